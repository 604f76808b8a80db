import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  MAX_EVENT_NESTING,
  nestsDeeperThan,
  PermanentError,
  RetryableError,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type InboundResponse,
} from '../../core/plugin-api/index.ts';
import type { ScimServiceConfig } from './config.ts';
import { processScim, type ScimResult, type UserView } from './mapping.ts';
import { SCIM_CONTENT_TYPE, ScimError, withoutWriteOnly, type Resource } from './scim.ts';

/**
 * Users are stored in this many checkpoints (`users-00` … `users-63`), so a change rewrites one
 * small shard, committed in the same transaction as the events it causes.
 */
export const SHARDS = 64;

export function shardOf(id: string): string {
  const n = createHash('sha256').update(id).digest()[0]! % SHARDS;
  return `users-${String(n).padStart(2, '0')}`;
}

/**
 * A request as the server hands it to the SCIM service. `path` is the part below the instance
 * (`/Users/2819c223`); it is read from the full URL path when the server passes that instead.
 */
export type ScimInboundRequest = InboundRequest & { path?: string; url?: string };

const SHARD_VALUE = (value: unknown): Record<string, Resource> =>
  value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, Resource>) : {};

/**
 * ssf-bridge as a SCIM 2.0 service provider: an HR system or identity provider provisions users
 * into it; deactivation, reactivation, deletion and identifier changes become events, committed
 * with the stored user before the SCIM answer is sent.
 */
export function createScimService(ctx: InboundContext, config: ScimServiceConfig): InboundConnector {
  const tokens = [config.token, config.previous_token]
    .filter((t) => t !== undefined)
    .map((t) => digest(t.reveal()));
  const requests = ctx.metrics.counter('scim_requests_total', 'SCIM requests by method and status', [
    'method',
    'status',
  ]);
  const emitted = ctx.metrics.counter('scim_events_total', 'Events emitted, by type', ['type']);
  const users = new Map<string, Resource>();
  let loaded: Promise<void> | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  function serial<T>(work: () => Promise<T>): Promise<T> {
    const next = running.then(work, work);
    running = next.catch(() => undefined);
    return next;
  }

  async function readShard(name: string): Promise<void> {
    const value = SHARD_VALUE(await ctx.checkpoints.get(name));
    for (const id of users.keys()) if (shardOf(id) === name && !(id in value)) users.delete(id);
    // withoutWriteOnly: a password kept by an earlier release is dropped here, and from the
    // checkpoint at the shard's next write.
    for (const [id, user] of Object.entries(value)) users.set(id, withoutWriteOnly(user));
  }

  function ensureLoaded(): Promise<void> {
    loaded ??= (async () => {
      for (let i = 0; i < SHARDS; i += 1) await readShard(`users-${String(i).padStart(2, '0')}`);
    })().catch((err: unknown) => {
      loaded = undefined;
      throw err;
    });
    return loaded;
  }

  const view: UserView = { get: (id) => users.get(id), all: () => users.values() };

  function shardContent(
    name: string,
    change: { id: string; user: Resource | null },
  ): Record<string, Resource> {
    const out: Record<string, Resource> = {};
    for (const [id, user] of users) if (shardOf(id) === name) out[id] = user;
    if (change.user) out[change.id] = change.user;
    else delete out[change.id];
    return out;
  }

  function answer(
    method: string,
    result: { status: number; body?: unknown; headers?: Record<string, string> },
  ) {
    requests.inc({ method, status: String(result.status) });
    return {
      status: result.status,
      headers: { 'content-type': SCIM_CONTENT_TYPE, ...result.headers },
      ...(result.body === undefined ? {} : { body: result.body }),
    } satisfies InboundResponse;
  }

  function baseUrl(req: InboundRequest): string {
    if (config.public_url) return config.public_url.replace(/\/+$/, '');
    const proto = req.headers['x-forwarded-proto']?.split(',')[0]?.trim() || 'http';
    const host = req.headers['x-forwarded-host']?.split(',')[0]?.trim() || req.headers.host || 'localhost';
    return `${proto}://${host}/scim/v2/${ctx.instanceId}`;
  }

  /**
   * The path below the instance, decoded once: the bridge passes `path` decoded already; a raw
   * `url` (another host) is decoded here. Ids are never decoded a second time, so `%25` in an id
   * stays a `%`, and a stray `%` is not an error.
   */
  function relativePath(req: ScimInboundRequest): string {
    let path = req.path ?? decodeOnce((req.url ?? '/').split('?')[0] as string);
    for (const prefix of [`/scim/v2/${ctx.instanceId}`, `/ingest/${ctx.instanceId}`]) {
      if (path === prefix || path.startsWith(`${prefix}/`)) path = path.slice(prefix.length);
    }
    return `/${path.replace(/^\/+|\/+$/g, '')}`;
  }

  function bodyOf(req: InboundRequest): unknown {
    if (req.body !== undefined) return req.body;
    if (req.rawBody.length === 0) return undefined;
    try {
      // RFC 8259 §8.1: a byte order mark (.NET, PowerShell) may be ignored, as the server does.
      const text = req.rawBody.toString('utf8');
      return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown;
    } catch {
      throw new ScimError(400, 'the body is not JSON', 'invalidSyntax');
    }
  }

  return {
    // The server leaves the body to bodyOf(), called after authenticate(): a client without the
    // token learns 401, not what the service thinks of its body.
    parsesOwnBody: true,
    // RFC 7644 §3.12: what the server answers itself (413, a full outbox's 503) is a SCIM error too.
    serverErrorResponse: ({ status, message }) => ({
      headers: { 'content-type': SCIM_CONTENT_TYPE },
      body: new ScimError(status, message, status === 400 ? 'invalidSyntax' : undefined).body(),
    }),
    async start() {
      stopped = false;
    },
    async stop(deadlineMs) {
      stopped = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise((r) => (timer = setTimeout(r, Math.max(0, deadlineMs))))]);
      clearTimeout(timer);
    },
    async handleWebhook(raw) {
      const req = raw as ScimInboundRequest;
      const method = req.method.toUpperCase();
      if (stopped) {
        return answer(method, {
          status: 503,
          headers: { 'retry-after': '5' },
          body: new ScimError(503, 'the service is stopping; try again').body(),
        });
      }
      const auth = authenticate(req.headers.authorization, tokens);
      if (auth !== 'ok') {
        return answer(method, {
          status: 401,
          headers: { 'www-authenticate': 'Bearer realm="ssf-bridge"' },
          body: new ScimError(
            401,
            auth === 'missing'
              ? 'send the token as "Authorization: Bearer <token>"'
              : 'the token is not valid',
          ).body(),
        });
      }
      try {
        const request = {
          method,
          path: relativePath(req),
          query: req.query,
          body: bodyOf(req),
          baseUrl: baseUrl(req),
        };
        if (nestsDeeperThan(request.body, MAX_EVENT_NESTING)) {
          throw new ScimError(
            400,
            `the body nests more than ${MAX_EVENT_NESTING} levels deep`,
            'invalidSyntax',
          );
        }
        await ensureLoaded();
        if (method === 'GET')
          return answer(method, processScim(request, view, config, ctx.clock.now(), randomUUID));
        const result = await serial(async (): Promise<ScimResult> => {
          const segments = request.path.split('/').filter(Boolean);
          const createdId = randomUUID();
          const target =
            segments[0] === 'Users' && segments[1] && segments[1] !== '.search' ? segments[1] : createdId;
          const shard = shardOf(target);
          // The target's shard is read again: another bridge instance may have changed it.
          await readShard(shard);
          const now = ctx.clock.now();
          const outcome = processScim(request, view, config, now, () => createdId);
          if (!outcome.write) return outcome;
          await ctx.emit(outcome.events, {
            checkpoint: { name: shard, value: shardContent(shard, outcome.write) },
          });
          if (outcome.write.user) users.set(outcome.write.id, outcome.write.user);
          else users.delete(outcome.write.id);
          for (const e of outcome.events) emitted.inc({ type: e.type });
          if (outcome.events.length > 0) {
            ctx.logger.info(
              { user: outcome.write.id, events: outcome.events.map((e) => e.type) },
              'SCIM change turned into events',
            );
          }
          return outcome;
        });
        ctx.status.success();
        return answer(method, result);
      } catch (err) {
        if (err instanceof ScimError) return answer(method, { status: err.status, body: err.body() });
        if (err instanceof PermanentError) {
          // The catalog refused an event: a bug or an unusable identifier, not the client's fault.
          ctx.logger.error({ err: err.message }, 'SCIM change could not be turned into valid events');
          return answer(method, { status: 500, body: new ScimError(500, err.message).body() });
        }
        requests.inc({ method, status: err instanceof RetryableError ? '503' : '500' });
        throw err;
      }
    },
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time comparison over digests, so neither content nor length leaks through timing. */
function authenticate(header: string | undefined, tokens: Buffer[]): 'ok' | 'missing' | 'refused' {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return 'missing';
  const presented = digest(match[1] as string);
  let ok = false;
  for (const token of tokens) ok = timingSafeEqual(presented, token) || ok;
  return ok ? 'ok' : 'refused';
}

function decodeOnce(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
