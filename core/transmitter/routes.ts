/**
 * The transmitter's HTTP surface on the bridge's fastify server: discovery, JWKS, stream
 * management and the RFC 8936 poll endpoint. Routes live under the issuer's path; the metadata
 * document at the inserted well-known path (SSF 1.0 §7.2.1).
 *
 * Every management and poll route authenticates in `onRequest`, before its body is read, and
 * needs a scope: ssf.read to read streams and poll, ssf.manage to change anything
 * (CAEP interop profile §2.7). Bodies are parsed before any stream is looked up, so a broken
 * body is a 400 rather than a 404 (checklist SSF-33). Management answers carry
 * `Cache-Control: no-store` (SSF-24).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SCOPE_MANAGE, SCOPE_READ } from './config.ts';
import { requireScope, type Principal, type Scope } from './auth.ts';
import { STREAM_CONFLICT, isStreamConflict } from '../storage/stream-conflict.ts';
import { TransmitterHttpError, badRequest } from './errors.ts';
import { ROUTES } from './metadata.ts';
import { requireStreamId } from './stream-model.ts';
import type { Transmitter } from './transmitter.ts';
import { unstorableTextPath } from '../plugin-api/storable-text.ts';
import { JWKS_MAX_AGE_SECONDS } from '../ssf/keys/config.ts';

type Query = Record<string, unknown>;

const principals = new WeakMap<FastifyRequest, Principal>();

function principalOf(req: FastifyRequest): Principal {
  const principal = principals.get(req);
  if (!principal) throw new Error('route without authentication');
  return principal;
}

/** The JSON body, also when the client sent no JSON content type. */
function jsonBody(req: FastifyRequest): unknown {
  return storable(parsedBody(req), '');
}

function parsedBody(req: FastifyRequest): unknown {
  if (req.body !== undefined) return req.body;
  const raw = req.rawBody;
  if (raw === undefined || raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw badRequest('the request body is not valid JSON');
  }
}

/**
 * `value` when every string and key in it can be stored; text holding U+0000 or half a
 * surrogate pair (which PostgreSQL refuses) is a 400 naming where, not a 500 from the store.
 */
function storable<T>(value: T, prefix: string): T {
  const at = unstorableTextPath(value, prefix);
  if (at !== undefined) {
    throw badRequest(`${at || 'the request body'} holds U+0000 or half of a surrogate pair`);
  }
  return value;
}

function queryOf(req: FastifyRequest): Query {
  return storable((req.query ?? {}) as Query, 'query');
}

function sendError(reply: FastifyReply, err: TransmitterHttpError): FastifyReply {
  for (const [name, value] of Object.entries(err.headers)) reply.header(name, value);
  return reply.code(err.status).send(err.body());
}

/** Mounts the transmitter on the bridge's server. Call before the server listens. */
export function registerTransmitter(app: FastifyInstance, tx: Transmitter): void {
  if (!tx.enabled) return;
  const { mount } = tx;

  app.get(mount.wellKnownPath, async (_req, reply) =>
    reply.header('cache-control', 'max-age=300').send(tx.metadata),
  );
  app.addHook('preClose', async () => tx.releaseLongPolls());

  /**
   * The issuer's origin, which the public URLs of the routes start with (known once listening
   * when the issuer is the default http://HOST:PORT).
   */
  let publicOrigin: string | undefined;
  void app.register(
    async (scope) => {
      // A rotation's new key is in this JWKS at once and signs only after keys.activation_delay,
      // which is meant to outlast this max-age (core/ssf/keys/config.ts).
      scope.get(ROUTES.jwks, async (_req, reply) =>
        reply
          .header('cache-control', `max-age=${JWKS_MAX_AGE_SECONDS}`)
          .type('application/jwk-set+json')
          .send(tx.jwks()),
      );

      scope.register(async (api) => {
        api.addHook('onRequest', async (req, reply) => {
          reply.header('cache-control', 'no-store');
          const needed = (req.routeOptions.config as { scope?: Scope }).scope;
          if (needed === undefined) return;
          const path = req.url.split('?')[0]!;
          publicOrigin ??= new URL(tx.urls.issuer).origin;
          const dpop = req.headers.dpop;
          const principal = await tx.auth.authenticate({
            authorization: req.headers.authorization,
            dpop: Array.isArray(dpop) ? dpop.join(', ') : dpop,
            query: queryOf(req),
            method: req.method,
            // RFC 9449 §4.3 step 9: a DPoP proof must name this resource: its URL under the
            // issuer, which is the transmitter's public URL (the path already holds the issuer's
            // path, as the routes are mounted under it). Never a URL made of the request's Host
            // header (or X-Forwarded-*), which the client chooses: a proof made for another
            // server would pass by sending that server's name as Host (§11.1).
            urls: [`${publicOrigin}${path}`],
          });
          if (principal.dpopNonce !== undefined) reply.header('dpop-nonce', principal.dpopNonce);
          requireScope(principal, needed);
          principals.set(req, principal);
        });

        api.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
          if (err instanceof TransmitterHttpError) return sendError(reply, err);
          if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
            return sendError(
              reply,
              new TransmitterHttpError(
                413,
                'invalid_request',
                'the request body is too large',
                'SSF_ERR_TRANSMITTER_BODY_TOO_LARGE',
              ),
            );
          }
          if (err.statusCode !== undefined && err.statusCode < 500)
            return sendError(reply, badRequest(err.message));
          if (isStreamConflict(err)) {
            // Other instances kept changing the stream first: the receiver tries again shortly.
            return sendError(
              reply,
              new TransmitterHttpError(503, 'temporarily_unavailable', err.message, STREAM_CONFLICT, {
                'retry-after': '1',
              }),
            );
          }
          tx.logger.error({ err, url: req.url.split('?')[0] }, 'transmitter request failed');
          return sendError(
            reply,
            new TransmitterHttpError(
              500,
              'server_error',
              'internal error; see the bridge log',
              'SSF_ERR_TRANSMITTER_INTERNAL',
            ),
          );
        });

        const read = { config: { scope: SCOPE_READ } };
        const manage = { config: { scope: SCOPE_MANAGE } };
        const svc = tx.service;

        // Stream configuration (§8.1.1).
        api.get(ROUTES.streams, read, async (req) => {
          const streamId = queryOf(req).stream_id;
          const principal = principalOf(req);
          if (streamId === undefined) return svc.list(principal);
          return svc.read(principal, requireStreamId(streamId));
        });
        api.post(ROUTES.streams, manage, async (req, reply) =>
          reply.code(201).send(await svc.create(principalOf(req), jsonBody(req))),
        );
        api.patch(ROUTES.streams, manage, async (req) =>
          svc.update(principalOf(req), jsonBody(req), 'update'),
        );
        api.put(ROUTES.streams, manage, async (req) =>
          svc.update(principalOf(req), jsonBody(req), 'replace'),
        );
        api.delete(ROUTES.streams, manage, async (req, reply) => {
          await svc.delete(principalOf(req), requireStreamId(queryOf(req).stream_id));
          return reply.code(204).send();
        });

        // Status (§8.1.2).
        api.get(ROUTES.status, read, async (req) =>
          svc.readStatus(principalOf(req), requireStreamId(queryOf(req).stream_id)),
        );
        api.post(ROUTES.status, manage, async (req) =>
          svc.updateStatus(principalOf(req), jsonBody(req), queryOf(req).stream_id),
        );

        // Subjects (§8.1.3).
        api.post(ROUTES.addSubject, manage, async (req, reply) => {
          await svc.addSubject(principalOf(req), jsonBody(req));
          return reply.code(200).send();
        });
        api.post(ROUTES.removeSubject, manage, async (req, reply) => {
          await svc.removeSubject(principalOf(req), jsonBody(req));
          return reply.code(204).send();
        });

        // Verification (§8.1.4).
        api.post(ROUTES.verify, manage, async (req, reply) => {
          await svc.verify(principalOf(req), jsonBody(req));
          return reply.code(204).send();
        });

        // RFC 8936 poll.
        api.post<{ Params: { streamId: string } }>(ROUTES.poll, read, async (req, reply) => {
          const abort = new AbortController();
          reply.raw.on('close', () => {
            if (!reply.raw.writableFinished) abort.abort();
          });
          return tx.delivery.poll(
            principalOf(req),
            storable(req.params.streamId, 'stream_id'),
            jsonBody(req),
            abort.signal,
          );
        });
      });
    },
    { prefix: mount.basePath },
  );
}
