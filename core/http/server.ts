import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../plugin-api/types.ts';
import {
  answersWithSetErrorsOf,
  isBridgeError,
  RetryableError,
  type InboundConnector,
  type InboundResponse,
  type InboundServerError,
} from '../plugin-api/index.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';
import { scrubSecrets } from '../plugin-api/secret.ts';
import type { StatusBoard } from '../runtime/status.ts';
import type { FastifyTrustProxy } from '../config/schema.ts';

export interface ServerDeps {
  logger: Logger;
  metrics: MetricsRegistry;
  status: StatusBoard;
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  /** Which proxies' X-Forwarded-* headers are believed (see fastifyTrustProxy in core/config). */
  trustProxy?: FastifyTrustProxy;
  /** The running inbound connector for `/ingest/<instance-id>`, if any. */
  inbound(instanceId: string): InboundConnector | undefined;
  /** Whether an instance id is configured at all (to tell 404 from 503). */
  isConfiguredInbound(instanceId: string): boolean;
  /** Whether the instance's connector serves SCIM paths (manifest capability `scim`). */
  servesScim?(instanceId: string): boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

const JSON_TYPE = /^application\/([\w.+-]*\+)?json\b/i;
const MALFORMED_JSON = 'SSF_ERR_HTTP_MALFORMED_JSON';
const INTERNAL = 'internal error; see the bridge log';

/**
 * The bridge's HTTP server: health, readiness, metrics, and `/ingest/<instance-id>` for every
 * webhook-style inbound connector. Other areas (transmitter, admin) register their routes on it.
 * Bodies are kept raw so connectors can verify signatures over the exact bytes.
 */
export function createServer(deps: ServerDeps): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.bodyLimitBytes,
    requestTimeout: deps.requestTimeoutMs,
    trustProxy: deps.trustProxy ?? false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  const requests = deps.metrics.counter('ssf_bridge_http_requests_total', 'HTTP requests served', [
    'route',
    'method',
    'status',
  ]);

  /**
   * The running connector whose endpoint `req` is for: `/ingest/<id>`, or `/scim/v2/<id>…` of a
   * SCIM service. Its options decide how the server parses the body and shapes its own errors.
   */
  const endpointOf = (req: FastifyRequest): InboundConnector | undefined => {
    const { instanceId } = (req.params ?? {}) as { instanceId?: string };
    if (instanceId === undefined) return undefined;
    const route = req.routeOptions.url;
    const served =
      route === '/ingest/:instanceId' ||
      (route?.startsWith('/scim/v2/:instanceId') === true && deps.servesScim?.(instanceId) === true);
    const connector = served ? deps.inbound(instanceId) : undefined;
    return connector?.handleWebhook ? connector : undefined;
  };

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    const raw = body as Buffer;
    req.rawBody = raw;
    const type = req.headers['content-type'] ?? '';
    if (raw.length === 0 || !JSON_TYPE.test(type) || endpointOf(req)?.parsesOwnBody === true) {
      return done(null, undefined);
    }
    try {
      // RFC 8259 §8.1: a parser may ignore a byte order mark, which .NET and PowerShell senders
      // put before the JSON. Only for parsing: rawBody keeps it, and signatures cover it.
      const text = raw.toString('utf8');
      done(null, JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text));
    } catch (err) {
      const parseError = new Error(`malformed JSON body: ${(err as Error).message}`) as Error & {
        statusCode: number;
        code: string;
      };
      parseError.statusCode = 400;
      parseError.code = MALFORMED_JSON;
      done(parseError, undefined);
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    requests.inc({
      route: req.routeOptions.url ?? 'unmatched',
      method: req.method,
      status: String(reply.statusCode),
    });
  });

  /** Whether the request is for an inbound instance that answers refusals as RFC 8935 errors. */
  const answersWithSetErrors = (req: FastifyRequest): boolean => {
    if (req.routeOptions.url !== '/ingest/:instanceId') return false;
    const { instanceId } = req.params as { instanceId?: string };
    return instanceId !== undefined && answersWithSetErrorsOf(deps.inbound(instanceId));
  };

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    // The path only: a query string may carry a token (`?access_token=`, a webhook's `?key=`).
    if (status >= 500) deps.logger.error({ err, url: req.url.split('?')[0] }, 'request failed');
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const message = `request body exceeds the limit of ${deps.bodyLimitBytes} bytes`;
      if (answersWithSetErrors(req)) {
        // RFC 8935 §2.3: a general HTTP condition keeps its status; the body is the push error shape.
        return reply
          .code(413)
          .header('content-language', 'en')
          .send({ err: 'invalid_request', description: message });
      }
      return sendServerError(
        reply,
        endpointOf(req),
        { status: 413, kind: 'body_too_large', message },
        { error: 'payload_too_large', message },
        deps.logger,
      );
    }
    if (status < 500) {
      if (err.code === MALFORMED_JSON && answersWithSetErrors(req)) {
        // RFC 8935 §2.3: an SSF push endpoint refuses what it cannot parse with {err, description}.
        return reply
          .code(status)
          .header('content-language', 'en')
          .send({ err: 'invalid_request', description: err.message });
      }
      const kind = err.code === MALFORMED_JSON ? 'malformed_json' : 'invalid_request';
      return sendServerError(
        reply,
        endpointOf(req),
        { status, kind, message: err.message },
        { error: 'invalid_request', message: err.message },
        deps.logger,
      );
    }
    return sendServerError(
      reply,
      endpointOf(req),
      { status: 500, kind: 'internal_error', message: INTERNAL },
      { error: 'internal_error', message: INTERNAL },
      deps.logger,
    );
  });

  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send({ error: 'not_found', message: `no route for ${req.method} ${req.url.split('?')[0]}` });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const { ready, reasons } = await deps.status.check();
    if (ready) return reply.code(200).send({ status: 'ready' });
    // Unauthenticated: a connector's or probe's reason that quotes a credential must not show it.
    return reply.code(503).send({ status: 'not_ready', reasons: reasons.map((r) => scrubSecrets(r)) });
  });

  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await deps.metrics.render();
    return reply.header('content-type', contentType).send(body);
  });

  const ingest = async (
    req: FastifyRequest<{ Params: { instanceId: string; '*'?: string } }>,
    reply: FastifyReply,
  ) => {
    const { instanceId } = req.params;
    const connector = deps.inbound(instanceId);
    if (!connector?.handleWebhook) {
      if (deps.isConfiguredInbound(instanceId) && !connector) {
        return reply
          .code(503)
          .header('retry-after', '5')
          .send({ error: 'unavailable', message: `instance ${instanceId} is not running` });
      }
      return reply.code(404).send({ error: 'not_found', message: `no webhook instance "${instanceId}"` });
    }
    try {
      const response = await connector.handleWebhook({
        method: req.method,
        headers: req.headers as Record<string, string | undefined>,
        query: req.query as Record<string, string | undefined>,
        rawBody: req.rawBody ?? Buffer.alloc(0),
        body: req.body,
        remoteAddress: req.ip,
        path: `/${req.params['*'] ?? ''}`,
      });
      for (const [name, value] of Object.entries(response.headers ?? {})) reply.header(name, value);
      return reply.code(response.status).send(response.body ?? '');
    } catch (err) {
      return replyWithError(reply, err, deps.logger, instanceId, connector);
    }
  };
  app.post('/ingest/:instanceId', ingest);
  app.put('/ingest/:instanceId', ingest);
  // SCIM 2.0 service providers get the resource paths and methods of RFC 7644 §3.
  const scimMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
  // Only to connectors that speak SCIM: another webhook connector would take a GET or DELETE
  // of any path as one more event.
  const scim = async (
    req: FastifyRequest<{ Params: { instanceId: string; '*'?: string } }>,
    reply: FastifyReply,
  ) => {
    if (deps.servesScim?.(req.params.instanceId) !== true) {
      return reply
        .code(404)
        .send({ error: 'not_found', message: `no SCIM service instance "${req.params.instanceId}"` });
    }
    return ingest(req, reply);
  };
  app.route({ method: [...scimMethods], url: '/scim/v2/:instanceId', handler: scim });
  app.route({ method: [...scimMethods], url: '/scim/v2/:instanceId/*', handler: scim });

  return app;
}

/**
 * Maps a connector error to an HTTP answer: retryable → 503 + Retry-After, else 4xx/500, with
 * the body `connector` shapes (see InboundConnector.serverErrorResponse) when it shapes them.
 */
export function replyWithError(
  reply: FastifyReply,
  err: unknown,
  logger: Logger,
  instanceId: string,
  connector?: InboundConnector,
) {
  if (err instanceof RetryableError) {
    const seconds = Math.max(1, Math.ceil((err.retryAfterMs ?? 5_000) / 1000));
    return sendServerError(
      reply,
      connector,
      { status: 503, kind: 'unavailable', message: err.message },
      { error: 'unavailable', code: err.code, message: err.message },
      logger,
      { 'retry-after': String(seconds) },
    );
  }
  if (isBridgeError(err) && err.errorClass === 'permanent') {
    return sendServerError(
      reply,
      connector,
      { status: 400, kind: 'invalid_request', message: err.message },
      { error: 'invalid_request', code: err.code, message: err.message },
      logger,
    );
  }
  logger.error({ err, instance: instanceId }, 'webhook handler failed');
  return sendServerError(
    reply,
    connector,
    { status: 500, kind: 'internal_error', message: INTERNAL },
    { error: 'internal_error', message: INTERNAL },
    logger,
  );
}

/**
 * Sends an answer the server makes itself: the connector's shape of it when it gives one, else
 * `fallback`. `headers` (Retry-After) are the server's and win over the connector's.
 */
function sendServerError(
  reply: FastifyReply,
  connector: InboundConnector | undefined,
  error: InboundServerError,
  fallback: unknown,
  logger: Logger,
  headers: Record<string, string> = {},
) {
  let shaped: Omit<InboundResponse, 'status'> | undefined;
  try {
    shaped = connector?.serverErrorResponse?.(error);
  } catch (err) {
    // A bug in the shaping must not turn a 413 or 503 into a 500 without its Retry-After.
    logger.error({ err }, 'connector could not shape the server error; answered in the bridge shape');
  }
  reply.code(error.status);
  for (const [name, value] of Object.entries({ ...shaped?.headers, ...headers })) reply.header(name, value);
  return reply.send(shaped ? (shaped.body ?? '') : fallback);
}
