/**
 * SET verification as connectors see it, for receivers of other transmitters' streams:
 * createSetVerifier() checks a SET the way a receiver must (signature against the transmitter's
 * JWKS, re-fetched once on an unknown kid; typ; algorithm allow-list; iss; aud; required claims;
 * no sub or exp; the event's definition; age; jti replay) and refuses it with a
 * SetVerificationError carrying its RFC 8935 error code.
 *
 * Replay is checked in two steps so a SET whose events could not be stored yet can be retried:
 * verify() refuses a jti already recorded, and record() remembers one once it is processed. The
 * jtis are remembered in memory, and in a ReplayLedger when one is given: checkpointReplayLedger()
 * keeps them in the instance's checkpoints, so a replay is refused after a restart and by every
 * bridge instance sharing the store.
 */
import { createHash } from 'node:crypto';
import type { SsrfPolicy } from '../http/ssrf.ts';
import { SetVerificationError } from '../ssf/errors.ts';
import { SSF_BASE } from '../ssf/events/common.ts';
import { findEventType, getEventType, listEventTypes } from '../ssf/events/catalog.ts';
import { remoteJwks, type JwksFetcher } from '../ssf/set/jwks.ts';
import { verifySet } from '../ssf/set/verify.ts';
import { z } from 'zod';
import { validateSubject } from '../ssf/subjects.ts';
import { RetryableError, retryOnCheckpointConflict } from './errors.ts';
import type {
  Clock,
  HttpClient,
  HttpClientFactory,
  HttpClientOptions,
  InboundContext,
  SubjectIdentifier,
} from './types.ts';

export { SetVerificationError } from '../ssf/errors.ts';
export { checkTargetUrl, ssrfPolicySchema, type SsrfPolicy } from '../http/ssrf.ts';
export type { SetErrorCode } from '../ssf/errors.ts';
export type { JwksFetcher } from '../ssf/set/jwks.ts';
/** Largest JWKS document to read (512 KiB): give it as maxResponseBytes to the client fetchJwks uses. */
export { MAX_JWKS_BYTES } from '../ssf/set/jwks.ts';

/** Algorithms a receiver may accept; `none` and HMAC are never among them. */
export type SetAlgorithm =
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA'
  | 'Ed25519';

export interface SetVerifierOptions {
  /** The transmitter's issuer: every SET's iss must equal it. */
  issuer: string;
  /** This receiver's audience value(s): the SET's aud must name one. */
  audience: string | readonly string[];
  /** The transmitter's jwks_uri. */
  jwksUri: string;
  /**
   * Fetches and parses the JWKS document. Required: the jwks_uri comes from the transmitter, so
   * the fetch must go through the connector's HTTP client with its SSRF policy
   * (guardedHttpClient), which a default could not know.
   */
  fetchJwks: JwksFetcher;
  /** Refuse SETs whose iat is older than this; undefined accepts any age. */
  maxAgeMs?: number;
  /** How long recorded jtis are remembered; default 24 h. */
  replayTtlMs?: number;
  /** Most jtis remembered; the oldest go first. Default 100 000. */
  replayMaxEntries?: number;
  /**
   * Where processed jtis are kept besides this process's memory, so that a replay is refused
   * after a restart and by other bridge instances (checkpointReplayLedger). Default: memory only.
   */
  replayLedger?: ReplayLedger;
  /** Accepted algorithms; default RS256, ES256, PS256, EdDSA. */
  algorithms?: readonly SetAlgorithm[];
  /** Tolerance for clocks that disagree; default 60 s. */
  clockSkewMs?: number;
  /** Minimum time between two JWKS fetches caused by unknown kids; default 30 s. */
  jwksCooldownMs?: number;
  /**
   * Longest one JWKS fetch may take (the signal fetchJwks gets ends then); default 5 s. Give the
   * connector's request timeout, so that a setting documented to cover JWKS requests does.
   */
  jwksTimeoutMs?: number;
  /**
   * Refuse a SET naming one event under several alternative URIs (CAEP interoperability
   * §2.8.1: exactly one). Default: taken once (SSF 1.0 §4.2.1).
   */
  exactlyOneEvent?: boolean;
  /**
   * Accept SETs of transmitters written before SSF 1.0 (Google's RISC, early CAEP), which name
   * the subject inside the event instead of in `sub_id`, spelt with `subject_type`. Default false.
   */
  legacySubject?: boolean;
  clock?: Clock;
}

/** A SET that passed every check. */
export interface VerifiedSetInfo {
  claims: Record<string, unknown>;
  jti: string;
  /**
   * The URI of the event the SET carries; of a SET naming one event under alternative URIs
   * (SSF 1.0 §4.2.1), the one the catalog relays it as.
   */
  eventType: string;
  event: Record<string, unknown>;
  subject: SubjectIdentifier;
  /** False for event types outside the catalog (accepted, contents unchecked). */
  knownEventType: boolean;
  /** The protected header's kid, when there is one. */
  kid?: string;
}

export interface SetVerifier {
  /** Verifies a compact SET; throws SetVerificationError when it must be refused. */
  verify(token: string): Promise<VerifiedSetInfo>;
  /**
   * Remembers a processed SET's jti so a replay of it is refused; resolves once the ledger holds
   * it (rejects with RetryableError when it cannot be written: the SET is to be retried).
   */
  record(set: VerifiedSetInfo): Promise<void>;
  /** Fetches the transmitter's JWKS now. */
  refreshKeys(): Promise<void>;
}

/** Creates a verifier for the SETs of one transmitter. */
export function createSetVerifier(options: SetVerifierOptions): SetVerifier {
  if (typeof options.fetchJwks !== 'function') {
    throw new TypeError(
      'createSetVerifier needs fetchJwks: fetch the JWKS through the HTTP client made by guardedHttpClient, whose SSRF policy covers a jwks_uri the transmitter chose',
    );
  }
  const clock = options.clock ?? { now: () => new Date() };
  const keys = remoteJwks(options.jwksUri, {
    fetcher: options.fetchJwks,
    ...(options.jwksCooldownMs !== undefined ? { cooldownMs: options.jwksCooldownMs } : {}),
    ...(options.jwksTimeoutMs !== undefined ? { timeoutMs: options.jwksTimeoutMs } : {}),
    clock,
  });
  const ttl = options.replayTtlMs ?? 86_400_000;
  const maxEntries = options.replayMaxEntries ?? 100_000;
  const seen = new Map<string, number>();
  const keyOf = (claims: Record<string, unknown>, jti: string) => `${String(claims.iss)}\u0000${jti}`;

  function evict(nowMs: number): void {
    for (const [key, expiry] of seen) {
      if (expiry > nowMs) break;
      seen.delete(key);
    }
  }

  return {
    refreshKeys: () => keys.refresh(),
    async verify(token) {
      const verified = await verifySet(token, {
        keys,
        issuer: options.issuer,
        audience: options.audience,
        clock,
        ...(options.maxAgeMs !== undefined ? { maxAgeMs: options.maxAgeMs } : {}),
        ...(options.clockSkewMs !== undefined ? { clockSkewMs: options.clockSkewMs } : {}),
        ...(options.algorithms ? { algorithms: options.algorithms } : {}),
        ...(options.legacySubject ? { legacySubject: true } : {}),
        ...(options.exactlyOneEvent ? { exactlyOneEvent: true } : {}),
      });
      const now = clock.now();
      const nowMs = now.getTime();
      evict(nowMs);
      const key = keyOf(verified.claims, verified.jti);
      const expiry = seen.get(key);
      const replayed =
        (expiry !== undefined && expiry > nowMs) ||
        (options.replayLedger !== undefined && (await options.replayLedger.has(key, now)));
      if (replayed) {
        throw new SetVerificationError(
          'invalid_request',
          `jti ${verified.jti} was already received (replayed SET)`,
          { code: 'SSF_ERR_SET_REPLAYED' },
        );
      }
      const kid = verified.header.kid;
      return {
        claims: verified.claims,
        jti: verified.jti,
        eventType: verified.eventType,
        event: verified.event as Record<string, unknown>,
        subject: verified.subject as SubjectIdentifier,
        knownEventType: verified.knownEventType,
        ...(kid !== undefined ? { kid } : {}),
      };
    },
    async record(set) {
      const now = clock.now();
      const nowMs = now.getTime();
      const key = keyOf(set.claims, set.jti);
      seen.delete(key);
      if (seen.size >= maxEntries) {
        const oldest = seen.keys().next();
        if (!oldest.done) seen.delete(oldest.value);
      }
      seen.set(key, nowMs + ttl);
      await options.replayLedger?.add(key, new Date(nowMs + ttl), now);
    },
  };
}

/**
 * A durable record of the jtis a receiver processed, consulted by createSetVerifier() besides its
 * memory. Keys are opaque strings (issuer and jti); an entry counts until it expires.
 */
export interface ReplayLedger {
  /** Whether `key` was added and has not expired at `now`; rejects with RetryableError when unknown. */
  has(key: string, now: Date): Promise<boolean>;
  /** Adds `key` until `expiresAt`; rejects with RetryableError when it cannot be written. */
  add(key: string, expiresAt: Date, now: Date): Promise<void>;
}

export interface CheckpointReplayLedgerOptions {
  /** Most entries kept in all; the soonest to expire go first. Default 100 000. */
  maxEntries?: number;
  /**
   * How many checkpoints the entries are spread over; each read and write moves one of them
   * (about maxEntries / buckets entries of 40 bytes). Default 1024.
   */
  buckets?: number;
  /** Prefix of the checkpoint names; default `replay-`. */
  prefix?: string;
}

/**
 * A ReplayLedger in the instance's checkpoints, which live in the bridge's store: a replay is
 * refused after a restart, and by every bridge instance sharing one database. Each key is kept as
 * a 132-bit hash in one of `buckets` checkpoints, written compare-and-set (another instance
 * writing the same bucket meanwhile makes the write start again from what it wrote); expired
 * entries are dropped when their bucket is written.
 */
export function checkpointReplayLedger(
  ctx: Pick<InboundContext, 'checkpoints' | 'emit' | 'logger'>,
  options: CheckpointReplayLedgerOptions = {},
): ReplayLedger {
  const buckets = Math.max(1, Math.floor(options.buckets ?? 1024));
  const perBucket = Math.max(1, Math.ceil((options.maxEntries ?? 100_000) / buckets));
  const prefix = options.prefix ?? 'replay-';
  const locate = (key: string) => {
    const digest = createHash('sha256').update(key).digest();
    return { name: `${prefix}${digest.readUInt32BE(0) % buckets}`, id: digest.toString('base64url', 0, 17) };
  };
  const read = async (name: string): Promise<unknown> => {
    try {
      return await ctx.checkpoints.get(name);
    } catch (err) {
      throw new RetryableError('cannot read the record of received SETs (replay protection) from the store', {
        code: 'SSF_ERR_REPLAY_LEDGER',
        cause: err,
      });
    }
  };
  const entries = (stored: unknown): Record<string, number> =>
    stored !== null && typeof stored === 'object' && !Array.isArray(stored)
      ? (stored as Record<string, number>)
      : {};
  return {
    async has(key, now) {
      const { name, id } = locate(key);
      const expiry = entries(await read(name))[id];
      return typeof expiry === 'number' && expiry > now.getTime();
    },
    async add(key, expiresAt, now) {
      const { name, id } = locate(key);
      const nowMs = now.getTime();
      try {
        await retryOnCheckpointConflict(
          async () => {
            const stored = await read(name);
            const live = Object.entries(entries(stored)).filter(
              ([other, expiry]) => other !== id && typeof expiry === 'number' && expiry > nowMs,
            );
            // Full: the entries closest to expiring make room.
            live.sort((a, b) => b[1] - a[1]);
            const value = Object.fromEntries([...live.slice(0, perBucket - 1), [id, expiresAt.getTime()]]);
            await ctx.emit([], { checkpoint: { name, value, expected: { value: stored } } });
          },
          (tries) =>
            ctx.logger.debug({ tries, checkpoint: name }, 'another instance recorded a SET meanwhile'),
          8,
        );
      } catch (err) {
        if (err instanceof RetryableError) throw err;
        throw new RetryableError('cannot record a received SET (replay protection) in the store', {
          code: 'SSF_ERR_REPLAY_LEDGER',
          cause: err,
        });
      }
    },
  };
}

/**
 * The subject a pre-SSF 1.0 transmitter wrote inside its event, in today's spelling
 * (`subject_type` → `format`, `iss-sub` → `iss_sub`, …); undefined when there is none or it does
 * not hold. What `legacySubject` takes when a SET has no `sub_id`.
 */
export function legacyEventSubject(event: Record<string, unknown>): SubjectIdentifier | undefined {
  if (event.subject === undefined) return undefined;
  const checked = validateSubject(event.subject, { lenient: true, path: 'events.subject' });
  return checked.ok ? checked.subject : undefined;
}

/**
 * An HTTP client for URLs a transmitter chose (the endpoints and `jwks_uri` of its metadata, the
 * poll `endpoint_url` of a stream): the core's client with `policy` as its SSRF policy. It checks
 * every request against the policy before sending it — https only unless the host is in
 * `allowHttpHosts`, no credentials in the URL, no internal address literal or name — and every
 * resolved address when it connects (no DNS rebinding), uses no proxy and follows no redirect. A
 * refusal is a permanent error with code `SSF_ERR_HTTP_SSRF_REFUSED`.
 */
export function guardedHttpClient(
  factory: HttpClientFactory,
  options: HttpClientOptions,
  policy: SsrfPolicy,
): HttpClient {
  // The core's factory honours ssrfPolicy; the plugin API's options type does not name it, so a
  // connector cannot widen it by accident.
  return factory.create({ ...options, ssrfPolicy: policy } as HttpClientOptions);
}

const SET_ERROR_BODIES = Symbol.for('ssf-bridge.inbound.set-error-bodies');

/**
 * Declares that an inbound connector's endpoint is an RFC 8935 push endpoint: the refusals the
 * server makes for it before the connector sees the request (a body that is not valid JSON) are
 * answered as RFC 8935 §2.3 error bodies, `{"err": "invalid_request", "description": …}` with
 * `Content-Language`, instead of the bridge's `{"error", "message"}`.
 */
export function answersWithSetErrors<T extends object>(connector: T): T {
  Object.defineProperty(connector, SET_ERROR_BODIES, { value: true });
  return connector;
}

/** Whether answersWithSetErrors() declared `connector`. */
export function answersWithSetErrorsOf(connector: unknown): boolean {
  return typeof connector === 'object' && connector !== null && SET_ERROR_BODIES in connector;
}

/**
 * The event types a receiver asks a transmitter for when its operator named none: every type the
 * bridge knows (CAEP, RISC, registered ones) except SSF's own verification and stream-updated
 * events, which a transmitter sends without being asked (SSF 1.0 §8.1.4, §8.1.5). Asking
 * explicitly keeps a transmitter from delivering types the bridge could not forward.
 */
export function receivableEventTypes(): string[] {
  return listEventTypes()
    .map((d) => d.uri)
    .filter((uri) => !uri.startsWith(SSF_BASE));
}

/**
 * The type a received event is relayed as: its own, or for a deprecated type the one that
 * replaces it (RISC 1.0 §2.11: a `sessions-revoked` is relayed as CAEP `session-revoked`). A
 * receiver accepts what a transmitter still sends and emits only what may be emitted.
 */
export function relayedEventType(uri: string): string {
  const replacedBy = findEventType(uri)?.replacedBy;
  return replacedBy === undefined ? uri : getEventType(replacedBy).uri;
}

/**
 * A subject identifier written in a config (RFC 9493, SSF 1.0 §3): checked when the config loads
 * and kept in canonical form; a bad one is refused with every problem found.
 */
export const subjectIdentifierSchema = z
  .record(z.string(), z.unknown())
  .transform((value, ctx): SubjectIdentifier => {
    const result = validateSubject(value, { path: 'subject' });
    if (result.ok) return result.subject;
    for (const p of result.problems) ctx.addIssue({ code: 'custom', message: `${p.path}: ${p.message}` });
    return z.NEVER;
  })
  .meta({ description: 'A subject identifier, e.g. {format: email, email: a@example.com}.' });

/** Names the time an instance first kept its jtis in ctx.receivedIds (see receivedIdsReplayLedger). */
const LEDGER_MOVED_CHECKPOINT = 'replay-ledger-moved';

export interface ReceivedIdsReplayLedgerOptions {
  /**
   * How long jtis recorded in the checkpoint buckets of checkpointReplayLedger() (by an earlier
   * version) stay worth consulting: the receiver's replay window.
   */
  legacyWindowMs: number;
  /** Prefix of those checkpoints; default `replay-`. */
  legacyPrefix?: string;
}

/** A ReplayLedger that writes what it needs before its first use (see receivedIdsReplayLedger). */
export interface PreparedReplayLedger extends ReplayLedger {
  /**
   * Records, once per instance, when it started keeping jtis here; call before the ledger is
   * used (the connector's setup). Rejects with RetryableError when the store cannot be written.
   */
  prepare(): Promise<void>;
}

/**
 * A ReplayLedger in ctx.receivedIds: one row per jti in the bridge's store, refused after a
 * restart and by every bridge instance sharing the database, with no cap on how many are kept
 * and one small write per SET. The jtis an earlier version kept in checkpoint buckets
 * (checkpointReplayLedger) are still consulted for one replay window after prepare() first ran,
 * so a replay of a SET received just before an upgrade is refused too (until prepare() has run,
 * always).
 */
export function receivedIdsReplayLedger(
  ctx: Pick<InboundContext, 'receivedIds' | 'checkpoints' | 'emit' | 'logger' | 'clock'>,
  options: ReceivedIdsReplayLedgerOptions,
): PreparedReplayLedger {
  const legacy = checkpointReplayLedger(ctx, options.legacyPrefix ? { prefix: options.legacyPrefix } : {});
  /** Until when legacy buckets are consulted (epoch ms); undefined: not known yet. */
  let legacyUntil: number | undefined;
  const unavailable = (err: unknown) =>
    new RetryableError('cannot set up the record of received SETs (replay protection) in the store', {
      code: 'SSF_ERR_REPLAY_LEDGER',
      cause: err,
    });
  const movedSince = async (): Promise<number | undefined> => {
    const stored = (await ctx.checkpoints.get(LEDGER_MOVED_CHECKPOINT)) as { since?: unknown } | undefined;
    return typeof stored?.since === 'number' ? stored.since : undefined;
  };
  return {
    async prepare() {
      try {
        let since = await movedSince();
        if (since === undefined) {
          since = ctx.clock.now().getTime();
          // Through emit, as every checkpoint a connector writes.
          await ctx.emit([], { checkpoint: { name: LEDGER_MOVED_CHECKPOINT, value: { since } } });
        }
        legacyUntil = since + options.legacyWindowMs;
      } catch (err) {
        throw err instanceof RetryableError ? err : unavailable(err);
      }
    },
    async has(key, now) {
      if (await ctx.receivedIds.has(key, now)) return true;
      if (legacyUntil !== undefined && now.getTime() >= legacyUntil) return false;
      return legacy.has(key, now);
    },
    add: (key, expiresAt, now) => ctx.receivedIds.add(key, expiresAt, now),
  };
}
