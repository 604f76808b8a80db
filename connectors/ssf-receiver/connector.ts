import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  ConfigError,
  PermanentError,
  RetryableError,
  SetVerificationError,
  answersWithSetErrors,
  receivedIdsReplayLedger,
  classOf,
  retryOnCheckpointConflict,
  createSetVerifier,
  formatDuration,
  isBridgeError,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type InboundResponse,
  type ScheduledTask,
  type SetVerifier,
  type VerifiedSetInfo,
} from '../../core/plugin-api/index.ts';
import { TransmitterClient, type StreamConfig, POLL_METHOD, PUSH_METHOD } from './client.ts';
import type { SsfReceiverConfig } from './config.ts';
import { SSF_STREAM_UPDATED, SSF_VERIFICATION, mapSet } from './mapping.ts';

const SET_CONTENT_TYPE = /^application\/secevent\+jwt\s*(;|$)/i;
const READY_WAIT_MS = 10_000;
/** How often the scheduler starts the poll loop when it is not running, and checks the leader. */
const POLL_LEADER_CHECK_MS = 5_000;
const STREAM_CHECKPOINT = 'stream';
/** How long a requested verification state is accepted from the shared store. */
const STATE_TTL_MS = 86_400_000;
/**
 * The verification states asked for in the last STATE_TTL_MS, by every instance sharing the
 * store: `{<state>: <requested at, ISO 8601>}`. Older ones are dropped at the next request, so
 * the checkpoint holds at most a day's worth of starts.
 */
const STATES_CHECKPOINT = 'verification-states';
/**
 * The verification states whose verification SET arrived, on whichever instance sharing the
 * store: `{<state>: <verified at, ISO 8601>}`, kept as long as the requests. The instance that
 * asked finds there a verification SET pushed to another one.
 */
const VERIFIED_CHECKPOINT = 'verification-results';

function liveStates(stored: unknown, nowMs: number): Record<string, string> {
  const live: Record<string, string> = {};
  if (stored === null || typeof stored !== 'object') return live;
  for (const [state, at] of Object.entries(stored as Record<string, unknown>)) {
    const t = typeof at === 'string' ? Date.parse(at) : NaN;
    if (Number.isFinite(t) && nowMs - t <= STATE_TTL_MS) live[state] = at as string;
  }
  return live;
}
/** RFC 8935 §2.3: an error response says the language of its description. */
const ERROR_HEADERS = { 'content-language': 'en' };

type StreamState = 'enabled' | 'paused' | 'disabled';

interface Stream {
  id: string;
  audience: string | readonly string[];
  pollUrl?: string;
  /** The transmitter's min_verification_interval (SSF 1.0 §8.1.1), in ms. */
  minVerificationMs?: number;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** How long a retryable failure asked to wait (its Retry-After), or 0. */
function retryAfterOf(err: unknown): number {
  const ms = err instanceof RetryableError ? err.retryAfterMs : undefined;
  return ms !== undefined && Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/** The kid a compact SET's header names, quoted, for error descriptions. */
function kidOf(token: string): string {
  try {
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as {
      kid?: unknown;
    };
    return typeof header.kid === 'string' ? JSON.stringify(header.kid.slice(0, 200)) : '(none)';
  } catch {
    return '(none)';
  }
}

function errorBody(
  err: SetVerificationError['err'],
  description: string,
): { err: string; description: string } {
  return { err, description };
}

/**
 * An SSF receiver of one upstream transmitter: reads its metadata, creates or adopts a stream,
 * asks for a verification event, receives SETs pushed to `/ingest/<instance-id>` or polls for
 * them, verifies each one, and emits the events it carries into the pipeline.
 */
export function createSsfReceiver(ctx: InboundContext, config: SsfReceiverConfig): InboundConnector {
  const client = new TransmitterClient(ctx, config);
  const sets = ctx.metrics.counter('ssf_receiver_sets_total', 'SETs received, by outcome', ['outcome']);
  const verifications = ctx.metrics.counter(
    'ssf_receiver_verifications_total',
    'Verification events received, by whether their state matched a request of this instance',
    ['outcome'],
  );
  const streamPaused = ctx.metrics.gauge(
    'ssf_receiver_stream_paused',
    '1 while the transmitter holds the stream paused',
  );
  const lastVerifiedGauge = ctx.metrics.gauge(
    'ssf_receiver_last_verification_timestamp_seconds',
    'When the last verification event answering a request of this receiver arrived (Unix time)',
  );
  /** Resolves the wait of a verification request of this process, by state. */
  const verificationWaiters = new Map<string, () => void>();
  /** When the last verification asked for was answered (ISO 8601), and the last failure. */
  let lastVerifiedAt: string | undefined;
  let verificationFailure: string | undefined;
  /** When this instance last asked for a verification (epoch ms). */
  let lastVerificationRequest = -Infinity;
  const pendingStates = new Set<string>();
  // The jtis processed, in the store: a replay is refused after a restart and by every bridge
  // instance sharing the database, not only by the process that took the SET first.
  const replayLedger = receivedIdsReplayLedger(ctx, { legacyWindowMs: config.replay_window });
  const pushToken =
    config.delivery.method === 'push' ? digest(config.delivery.authorization_header.reveal()) : undefined;
  // RFC 9110 §15.5.2, RFC 6750 §3: a 401 names the scheme the transmitter must use — the one of
  // the Authorization header given to it (its first word), Bearer when that is no scheme name.
  const pushScheme =
    config.delivery.method === 'push'
      ? (/^([!#$%&'*+.^_`|~\w-]+)\s/.exec(config.delivery.authorization_header.reveal())?.[1] ?? 'Bearer')
      : 'Bearer';
  const challenge = `${pushScheme} realm="${ctx.instanceId}"`;

  let verifier: SetVerifier | undefined;
  let stream: Stream | undefined;
  let streamState: StreamState = 'enabled';
  let ready: Promise<void> | undefined;
  let firstAttempt: Promise<void> = Promise.resolve();
  let loop: Promise<void> | undefined;
  let polling: ScheduledTask | undefined;
  let verifying: ScheduledTask | undefined;
  let stopping: AbortController | undefined;
  let verificationState: string | undefined;
  let pendingAck: string[] = [];
  let pendingErrs: Record<string, { err: string; description: string }> = {};
  /** The stream delete_stream_on_stop deleted, so a second stop does not ask again. */
  let deletedStream: string | undefined;
  /** When a SET naming an unknown kid last made this instance fetch the JWKS again. */
  let unknownKidFetchAt = -Infinity;
  /** The iat of the stream-updated event whose status was applied last. */
  let lastStatusIat: number | undefined;

  function reportStreamState(state: StreamState, reason?: string): void {
    streamState = state;
    streamPaused.set(undefined, state === 'paused' ? 1 : 0);
    const because = reason ? `: ${reason}` : '';
    if (state === 'paused')
      ctx.status.set('recoverable_error', `the transmitter paused the stream${because}`);
    else if (state === 'disabled')
      ctx.status.set('permanent_error', `the transmitter disabled the stream${because}`);
    else if (verificationFailure !== undefined) ctx.status.set('recoverable_error', verificationFailure);
    else ctx.status.set('ok', okReason(because));
  }

  function okReason(because = ''): string {
    const verified = lastVerifiedAt ? `; verified ${lastVerifiedAt}` : '';
    return `stream ${stream?.id ?? ''} enabled${because}${verified}`.trim();
  }

  /** A verification asked for was answered, here or on another instance sharing the store. */
  function verificationSucceeded(at: string): void {
    if (lastVerifiedAt === undefined || at > lastVerifiedAt) lastVerifiedAt = at;
    lastVerifiedGauge.set(undefined, Date.parse(lastVerifiedAt) / 1000);
    verificationFailure = undefined;
    if (streamState === 'enabled') ctx.status.set('ok', okReason());
  }

  /** A verification asked for was refused or not answered in time: the stream may not deliver. */
  function verificationFailed(reason: string, outcome: 'timed_out' | 'request_failed', err?: unknown): void {
    verifications.inc({ outcome });
    verificationFailure = reason;
    ctx.logger.warn({ ...(err ? { err } : {}), streamId: stream?.id, lastVerifiedAt }, reason);
    if (streamState === 'enabled') ctx.status.set('recoverable_error', reason);
  }

  async function resolveStream(signal: AbortSignal): Promise<StreamConfig> {
    const remembered = (await ctx.checkpoints.get(STREAM_CHECKPOINT)) as { stream_id?: string } | undefined;
    const known = config.stream_id ?? remembered?.stream_id;
    if (known) {
      const found = await client.readStream(known, signal);
      if (found) return adopt(found, signal);
      if (config.stream_id) {
        throw new ConfigError(`the transmitter has no stream ${config.stream_id} for this client`, {
          code: 'SSF_ERR_RECEIVER_STREAM_UNKNOWN',
        });
      }
      ctx.logger.warn({ streamId: known }, 'the stream this instance created is gone; creating a new one');
    }
    const created = await client.createStream(signal);
    if (created) {
      ctx.logger.info({ streamId: created.stream_id }, 'created a stream');
      return requestAllEvents(created, signal);
    }
    // The transmitter allows one stream per client and this client has one: adopt it.
    const [existing] = await client.listStreams(signal);
    if (!existing) {
      throw new PermanentError('the transmitter refused a new stream (409) but lists none for this client', {
        code: 'SSF_ERR_RECEIVER_STREAM_CONFLICT',
      });
    }
    return adopt(existing, signal);
  }

  /**
   * With no events configured, and a new stream that delivers none of those asked for, asks for
   * every event type the transmitter supports but SSF's own (sent unasked, SSF 1.0 §8.1.4–5).
   */
  async function requestAllEvents(found: StreamConfig, signal: AbortSignal): Promise<StreamConfig> {
    const supported = (found.events_supported ?? []).filter(
      (uri) => uri !== SSF_VERIFICATION && uri !== SSF_STREAM_UPDATED,
    );
    if (config.events_requested.length > 0 || supported.length === 0) return found;
    if ((found.events_delivered ?? []).length > 0) return found;
    return client.updateEvents(found, supported, signal);
  }

  async function adopt(found: StreamConfig, signal: AbortSignal): Promise<StreamConfig> {
    const wanted = config.delivery.method === 'push' ? PUSH_METHOD : POLL_METHOD;
    ctx.logger.info({ streamId: found.stream_id }, 'adopting an existing stream');
    // A push stream always gets this instance's URL and authorization header (neither can be read
    // back); events_requested and description changed in the configuration are applied too.
    return client.updateStream(
      found,
      { delivery: found.delivery?.method !== wanted || wanted === PUSH_METHOD },
      signal,
    );
  }

  async function setup(signal: AbortSignal): Promise<void> {
    const metadata = await client.discover(signal);
    const found = await resolveStream(signal);
    const audience = config.audience ?? found.aud;
    if (audience === undefined || (Array.isArray(audience) && audience.length === 0)) {
      throw new ConfigError('the stream has no aud; set audience in the configuration', {
        code: 'SSF_ERR_RECEIVER_AUDIENCE',
      });
    }
    const pollUrl = found.delivery?.endpoint_url;
    if (config.delivery.method === 'poll' && !pollUrl) {
      throw new PermanentError(`stream ${found.stream_id} has no poll endpoint_url`, {
        code: 'SSF_ERR_RECEIVER_POLL_URL',
      });
    }
    // The poll request carries the management credentials: same rules as the management API.
    if (config.delivery.method === 'poll') client.checkTransmitterUrl('poll endpoint_url', pollUrl!, true);
    stream = {
      id: found.stream_id,
      audience,
      ...(config.delivery.method === 'poll' ? { pollUrl } : {}),
      ...(typeof found.min_verification_interval === 'number'
        ? { minVerificationMs: found.min_verification_interval * 1000 }
        : {}),
    };
    await replayLedger.prepare();
    verifier = createSetVerifier({
      issuer: config.issuer,
      audience,
      jwksUri: metadata.jwks_uri,
      fetchJwks: (url, s) => client.fetchJwks(url, s),
      ...(config.max_age > 0 ? { maxAgeMs: config.max_age } : {}),
      replayTtlMs: config.replay_window,
      replayLedger,
      algorithms: config.algorithms,
      jwksCooldownMs: config.jwks_refresh_cooldown,
      // request_timeout covers JWKS requests too (the core's default would cut them at 5 s).
      jwksTimeoutMs: config.request_timeout,
      legacySubject: config.legacy_subjects,
      clock: ctx.clock,
    });
    await ctx.checkpoints.set({ stream_id: found.stream_id }, STREAM_CHECKPOINT);
    let status = await client.readStatus(found.stream_id, signal);
    if (config.stream_status !== undefined && status?.status !== config.stream_status) {
      status = await client.updateStatus(found.stream_id, config.stream_status, signal);
      ctx.logger.info({ streamId: found.stream_id, status: status?.status }, 'set the stream status');
    }
    const state = status?.status;
    reportStreamState(state === 'paused' || state === 'disabled' ? state : 'enabled', status?.reason);
    await applySubjects(found.stream_id, signal);
    if (config.verify_on_start && client.metadata?.verification_endpoint) {
      verificationState = await prepareVerification();
    }
    // The verification event is asked for once start() has returned (see start()), not here:
    // pushes are routed to an instance only after its start, and a transmitter may push the
    // verification SET before it answers the request.
  }

  /** Adds and removes the configured subjects (SSF 1.0 §8.1.3); both are idempotent. */
  async function applySubjects(streamId: string, signal: AbortSignal): Promise<void> {
    for (const subject of config.subjects.add) await client.addSubject(streamId, subject, signal);
    for (const subject of config.subjects.remove) await client.removeSubject(streamId, subject, signal);
    const { add, remove } = config.subjects;
    if (add.length + remove.length > 0) {
      ctx.logger.info({ streamId, added: add.length, removed: remove.length }, 'applied the stream subjects');
    }
  }

  /**
   * Picks the state of the verification to ask for and records it, here and in the shared store:
   * with several bridge instances behind one URL, the verification SET may be pushed to another
   * instance than the one that asked for it.
   */
  async function prepareVerification(): Promise<string> {
    const state = randomBytes(16).toString('base64url');
    const now = ctx.clock.now();
    // Compare-and-set: instances starting together each keep the others' states.
    await retryOnCheckpointConflict(
      async () => {
        const stored = await ctx.checkpoints.get(STATES_CHECKPOINT);
        const value = { ...liveStates(stored, now.getTime()), [state]: now.toISOString() };
        await ctx.emit([], { checkpoint: { name: STATES_CHECKPOINT, value, expected: { value: stored } } });
      },
      (tries) => ctx.logger.debug({ tries }, 'another instance recorded a verification state meanwhile'),
    );
    pendingStates.add(state);
    return state;
  }

  /**
   * SSF 1.0 §8.1.4.2: asks for a verification event carrying `state` (recorded beforehand by
   * prepareVerification) and waits up to verification.timeout for it, here or on another
   * instance sharing the store. A refused request or no event in time is reported as
   * recoverable_error (the stream may not be delivering); the next answered one clears it.
   */
  async function requestVerification(state: string, signal: AbortSignal): Promise<void> {
    const current = stream;
    if (!current) return;
    lastVerificationRequest = ctx.clock.now().getTime();
    const answered = new Promise<'answered'>((resolve) =>
      verificationWaiters.set(state, () => resolve('answered')),
    );
    try {
      try {
        await client.requestVerification(current.id, state, signal);
      } catch (err) {
        pendingStates.delete(state);
        if (signal.aborted) return;
        const message = err instanceof Error ? err.message : String(err);
        verificationFailed(
          `the transmitter refused the verification request: ${message}`,
          'request_failed',
          err,
        );
        return;
      }
      const timeout = config.verification.timeout;
      const waited = new AbortController();
      const outcome = await Promise.race([
        answered,
        sleep(timeout, AbortSignal.any([signal, waited.signal])).then(() => 'timeout' as const),
      ]);
      waited.abort();
      if (outcome === 'answered' || signal.aborted) return;
      const elsewhere = await verifiedElsewhere(state).catch(() => undefined);
      if (elsewhere !== undefined) {
        verificationSucceeded(elsewhere);
        return;
      }
      // The state stays acceptable: a verification SET arriving late still counts.
      verificationFailed(
        `no verification event answered the request of stream ${current.id} within ${formatDuration(timeout)}`,
        'timed_out',
      );
    } finally {
      verificationWaiters.delete(state);
    }
  }

  /** When the verification asked for with `state` was answered on another instance, if it was. */
  async function verifiedElsewhere(state: string): Promise<string | undefined> {
    const live = liveStates(await ctx.checkpoints.get(VERIFIED_CHECKPOINT), ctx.clock.now().getTime());
    return live[state];
  }

  /** Records that `state` was answered, for the instance that asked if it is another one. */
  async function recordVerified(state: string, at: string): Promise<void> {
    try {
      await retryOnCheckpointConflict(
        async () => {
          const stored = await ctx.checkpoints.get(VERIFIED_CHECKPOINT);
          const value = { ...liveStates(stored, ctx.clock.now().getTime()), [state]: at };
          await ctx.emit([], {
            checkpoint: { name: VERIFIED_CHECKPOINT, value, expected: { value: stored } },
          });
        },
        (tries) => ctx.logger.debug({ tries }, 'another instance recorded a verification meanwhile'),
      );
    } catch (err) {
      ctx.logger.warn(
        { err },
        'could not record the verification in the store; only this instance knows of it',
      );
    }
  }

  /** verification.interval: asks for a verification now unless paused or asked too recently. */
  async function periodicVerification(signal: AbortSignal): Promise<void> {
    try {
      await ready;
    } catch {
      return;
    }
    const current = stream;
    if (!current || signal.aborted || !client.metadata?.verification_endpoint) return;
    if (streamState !== 'enabled') {
      ctx.logger.debug(
        { streamId: current.id, streamState },
        'no verification asked for: the stream is not enabled',
      );
      return;
    }
    const since = ctx.clock.now().getTime() - lastVerificationRequest;
    if (current.minVerificationMs !== undefined && since < current.minVerificationMs) {
      ctx.logger.debug(
        { streamId: current.id, minVerificationMs: current.minVerificationMs },
        'no verification asked for: the transmitter’s min_verification_interval has not passed',
      );
      return;
    }
    await requestVerification(await prepareVerification(), signal);
  }

  /** Starts the setup, retrying it while the failures are retryable. */
  function startSetup(signal: AbortSignal): Promise<void> {
    let attempted: () => void = () => undefined;
    firstAttempt = new Promise<void>((resolve) => (attempted = resolve));
    const run = async (): Promise<void> => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          await setup(signal);
          return;
        } catch (err) {
          attempted();
          if (signal.aborted) throw err;
          const message = err instanceof Error ? err.message : String(err);
          if (classOf(err) !== 'retryable') {
            ctx.status.set('permanent_error', message);
            ctx.logger.error({ err }, 'cannot set up the stream');
            throw err;
          }
          ctx.status.set('recoverable_error', message);
          ctx.logger.warn({ err }, 'cannot set up the stream yet; retrying');
          await sleep(Math.max(Math.min(1000 * 2 ** attempt, 60_000), retryAfterOf(err)), signal);
        }
      }
    };
    const promise = run();
    promise.catch(() => undefined);
    return promise;
  }

  function refuse(description: string, err: SetVerificationError['err'] = 'invalid_request'): never {
    throw new SetVerificationError(err, description, { code: 'SSF_ERR_RECEIVER_CONTROL_EVENT' });
  }

  /** Handles a stream control event; throws SetVerificationError when it must be refused. */
  /** Whether this instance, or another sharing its store, asked for a verification with `state`. */
  async function requested(state: string): Promise<boolean> {
    if (pendingStates.has(state)) return true;
    const live = liveStates(await ctx.checkpoints.get(STATES_CHECKPOINT), ctx.clock.now().getTime());
    return Object.hasOwn(live, state);
  }

  async function control(set: VerifiedSetInfo): Promise<void> {
    const current = stream as Stream;
    const subject = set.subject as { format: string; id?: unknown };
    if (subject.format === 'opaque' && subject.id !== current.id) {
      refuse(`the ${set.eventType} event is about stream ${String(subject.id)}, not ${current.id}`);
    }
    if (set.eventType === SSF_VERIFICATION) {
      const state = set.event.state;
      if (state === undefined) {
        verifications.inc({ outcome: 'unsolicited' });
        return;
      }
      if (typeof state !== 'string' || !(await requested(state))) {
        verifications.inc({ outcome: 'mismatched' });
        // SSF 1.0 §8.1.4.1: a state this receiver did not ask for is refused as invalid_state.
        refuse(
          'the verification state does not match a verification request of this receiver',
          'invalid_state',
        );
      }
      pendingStates.delete(state);
      verifications.inc({ outcome: 'matched' });
      const at = ctx.clock.now().toISOString();
      ctx.logger.info({ streamId: current.id }, 'stream verified');
      verificationSucceeded(at);
      verificationWaiters.get(state)?.();
      await recordVerified(state, at);
      return;
    }
    const status = set.event.status;
    const reason = typeof set.event.reason === 'string' ? set.event.reason : undefined;
    if (status === 'paused' || status === 'disabled' || status === 'enabled') {
      // RFC 8935 §4 / RFC 8936: SETs may arrive out of order (a push retried after a later one
      // went through, a poll answer's order). A status announced before the one applied last is
      // stale: applying it would show a resumed stream as paused until the next announcement.
      const iat = set.claims.iat as number;
      if (lastStatusIat !== undefined && iat < lastStatusIat) {
        ctx.logger.info(
          { streamId: current.id, status, reason, iat, appliedIat: lastStatusIat },
          'ignored a stream-updated event older than the status applied last (delivered out of order)',
        );
        return;
      }
      lastStatusIat = iat;
      ctx.logger.info({ streamId: current.id, status, reason }, 'the transmitter updated the stream status');
      reportStreamState(status, reason);
    }
  }

  /**
   * SSF 1.0 §3.6 (checklist SSF-06): the members of the SET's subject (its sub_id, or a subject
   * inside the event) that the transmitter's metadata lists in critical_subject_members and
   * that this bridge does not honour (honoured_subject_members). Destinations are handed the
   * subject as it came, but routes and target profiles act on the user or device in it (a
   * profile may keep the user member only), so a member such as `tenant` would be lost on the
   * way and the event taken as being about the whole user.
   */
  function unhonouredCriticalMembers(set: VerifiedSetInfo): string[] {
    const critical = client.metadata?.critical_subject_members ?? [];
    if (critical.length === 0) return [];
    const present = new Set<string>();
    for (const subject of [set.subject, set.event.subject]) {
      if (subject === null || typeof subject !== 'object') continue;
      const members = subject as Record<string, unknown>;
      if (members.format !== 'complex') continue;
      for (const name of Object.keys(members)) if (name !== 'format') present.add(name);
    }
    const honoured = new Set(config.honoured_subject_members);
    return critical.filter((member) => present.has(member) && !honoured.has(member));
  }

  /**
   * Verifies a SET's signature and claims. The verifier fetches the JWKS again for an unknown kid
   * only when its last fetch is older than jwks_refresh_cooldown, whatever caused that fetch; a kid
   * met within the cooldown after the fetch at start (or after the first SET's) is answered
   * retryable, so a SET signed with a key the transmitter never published was never refused.
   * Here the cooldown counts between fetches caused by unknown kids, as configured: the first
   * unknown kid fetches the JWKS at once, and a kid still missing from it is refused as
   * `invalid_key` (checklist SET-08, RFC 8935 §2.4).
   */
  async function verifySet(token: string): Promise<VerifiedSetInfo> {
    const current = verifier as SetVerifier;
    try {
      return await current.verify(token);
    } catch (err) {
      if (!(err instanceof RetryableError) || err.code !== 'SSF_ERR_JWKS_COOLDOWN') throw err;
      const now = ctx.clock.now().getTime();
      if (now - unknownKidFetchAt < config.jwks_refresh_cooldown) throw err;
      unknownKidFetchAt = now;
      await current.refreshKeys();
      try {
        return await current.verify(token);
      } catch (again) {
        if (!(again instanceof RetryableError) || again.code !== 'SSF_ERR_JWKS_COOLDOWN') throw again;
        throw new SetVerificationError(
          'invalid_key',
          `no key with kid ${kidOf(token)} in the transmitter's JWKS, fetched again just now`,
          { code: 'SSF_ERR_SET_UNKNOWN_KEY' },
        );
      }
    }
  }

  /** Verifies one SET and emits its event; throws SetVerificationError when it is refused. */
  async function receive(token: string): Promise<void> {
    const set = await verifySet(token);
    if (set.eventType === SSF_VERIFICATION || set.eventType === SSF_STREAM_UPDATED) await control(set);
    const mapped = set.knownEventType
      ? mapSet(set, config.bridge_issuer, ctx.logger)
      : { events: [], ignored: `event type ${set.eventType} is not in the catalog` };
    const critical = mapped.events.length > 0 ? unhonouredCriticalMembers(set) : [];
    if (critical.length > 0) {
      // SSF 1.0 §3.6: the event MUST be discarded. The SET itself is valid, so it is answered
      // as processed — 202 when pushed (RFC 8935 §2.2: a valid SET is acknowledged with 202;
      // the §2.3 error codes say a SET is malformed or not acceptable, which would blame the
      // transmitter for a SET it built correctly, and a 400 is not retried either) and `ack`
      // when polled (setErrs reports SETs that failed validation). What is discarded is logged
      // at warn with its members and counted (outcome "discarded"), and its jti is recorded so
      // a redelivery is answered the same way.
      await (verifier as SetVerifier).record(set);
      sets.inc({ outcome: 'discarded' });
      ctx.logger.warn(
        {
          jti: set.jti,
          eventType: set.eventType,
          criticalMembers: critical,
          honoured: config.honoured_subject_members,
        },
        `discarded an event whose subject has the critical member(s) ${critical.join(', ')}, which this bridge does not honour (SSF 1.0 §3.6); list them in honoured_subject_members if its routes and destinations act on them`,
      );
      if (streamState === 'enabled') ctx.status.success();
      return;
    }
    if (mapped.events.length > 0) await ctx.emit(mapped.events);
    await (verifier as SetVerifier).record(set);
    if (mapped.ignored !== undefined) {
      sets.inc({ outcome: 'ignored' });
      ctx.logger.debug({ jti: set.jti, reason: mapped.ignored }, 'received a SET that emits no event');
    } else sets.inc({ outcome: 'emitted' });
    if (streamState === 'enabled') ctx.status.success();
  }

  async function whenReady(): Promise<'ready' | 'pending' | 'failed'> {
    if (!ready) return 'pending';
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'pending'>((resolve) => {
      timer = setTimeout(() => resolve('pending'), READY_WAIT_MS);
    });
    try {
      return await Promise.race([
        ready.then(
          () => 'ready' as const,
          () => 'failed' as const,
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  function authorize(req: InboundRequest): InboundResponse | undefined {
    const presented = req.headers.authorization;
    if (!presented) {
      return {
        status: 401,
        headers: { ...ERROR_HEADERS, 'www-authenticate': challenge },
        body: errorBody(
          'authentication_failed',
          'send the Authorization header given to the transmitter in the stream configuration',
        ),
      };
    }
    if (!timingSafeEqual(digest(presented), pushToken as Buffer)) {
      return {
        status: 403,
        headers: ERROR_HEADERS,
        body: errorBody('access_denied', 'the Authorization header is not the one given to the transmitter'),
      };
    }
    return undefined;
  }

  async function handlePush(req: InboundRequest): Promise<InboundResponse> {
    const denied = authorize(req);
    if (denied) {
      sets.inc({ outcome: 'unauthorized' });
      return denied;
    }
    if (!SET_CONTENT_TYPE.test(req.headers['content-type'] ?? '')) {
      sets.inc({ outcome: 'refused' });
      return {
        status: 400,
        headers: ERROR_HEADERS,
        body: errorBody('invalid_request', 'the Content-Type must be application/secevent+jwt'),
      };
    }
    const readiness = await whenReady();
    if (readiness !== 'ready') {
      return {
        status: 503,
        headers: { ...ERROR_HEADERS, 'retry-after': '5' },
        body: errorBody('invalid_request', 'the receiver is not connected to its stream yet'),
      };
    }
    const token = typeof req.body === 'string' ? req.body : req.rawBody.toString('utf8');
    try {
      await receive(token);
      return { status: 202 };
    } catch (err) {
      if (err instanceof SetVerificationError && err.code === 'SSF_ERR_SET_REPLAYED') {
        // RFC 8935 §2.2: a SET delivered again (same jti) is answered like its first delivery;
        // it was processed then and is not emitted twice.
        sets.inc({ outcome: 'ignored' });
        return { status: 202 };
      }
      if (err instanceof SetVerificationError) {
        sets.inc({ outcome: 'refused' });
        ctx.logger.warn({ code: err.code, err: err.err, description: err.description }, 'refused a SET');
        return { status: 400, headers: ERROR_HEADERS, body: err.toResponseBody() };
      }
      if (isBridgeError(err) && err.errorClass === 'permanent') {
        sets.inc({ outcome: 'refused' });
        return { status: 400, headers: ERROR_HEADERS, body: errorBody('invalid_request', err.message) };
      }
      throw err; // retryable: the server answers 503 and the transmitter retries
    }
  }

  /** One poll; says whether it brought SETs or the transmitter has more. */
  async function pollOnce(signal: AbortSignal): Promise<{ more: boolean }> {
    const current = stream as Stream;
    const delivery = config.delivery as Extract<SsfReceiverConfig['delivery'], { method: 'poll' }>;
    const response = await client.poll(
      current.pollUrl as string,
      { maxEvents: delivery.max_events, returnImmediately: false, ack: pendingAck, setErrs: pendingErrs },
      delivery.timeout,
      signal,
    );
    pendingAck = [];
    pendingErrs = {};
    for (const [jti, token] of Object.entries(response.sets)) {
      try {
        await receive(token);
        pendingAck.push(jti);
      } catch (err) {
        if (!(err instanceof SetVerificationError)) {
          if (isBridgeError(err) && err.errorClass === 'permanent') {
            pendingErrs[jti] = errorBody('invalid_request', err.message);
            sets.inc({ outcome: 'refused' });
            continue;
          }
          throw err; // not acknowledged: the transmitter returns it again
        }
        if (err.code === 'SSF_ERR_SET_REPLAYED') {
          // Already processed: acknowledge it again.
          pendingAck.push(jti);
          sets.inc({ outcome: 'ignored' });
          continue;
        }
        sets.inc({ outcome: 'refused' });
        ctx.logger.warn({ jti, code: err.code, description: err.description }, 'refused a polled SET');
        pendingErrs[jti] = err.toResponseBody();
      }
    }
    return { more: Object.keys(response.sets).length > 0 || response.moreAvailable === true };
  }

  async function pollLoop(signal: AbortSignal): Promise<void> {
    const delivery = config.delivery as Extract<SsfReceiverConfig['delivery'], { method: 'poll' }>;
    try {
      await ready;
    } catch {
      return;
    }
    let failures = 0;
    while (!signal.aborted) {
      const started = Date.now();
      try {
        const { more } = await pollOnce(signal);
        failures = 0;
        // Poll again at once after SETs (their ack goes with it) or when more are waiting. An
        // empty answer that came back sooner than poll_interval_when_empty (a paused stream's
        // {"sets":{}}, a transmitter that returns at once or holds long polls briefly) waits out
        // the rest, so an idle stream is not polled in a busy loop; stop() ends the wait.
        const wait = more ? 0 : delivery.poll_interval_when_empty - (Date.now() - started);
        if (wait > 0) await sleep(wait, signal);
      } catch (err) {
        if (signal.aborted) break;
        failures += 1;
        ctx.status.set('recoverable_error', err instanceof Error ? err.message : String(err));
        ctx.logger.warn({ err }, 'poll failed');
        // A Retry-After (429, 503) is a floor: never poll again sooner than the transmitter asked.
        const backoff = delivery.error_backoff * 2 ** Math.min(failures - 1, 4);
        await sleep(Math.max(backoff, retryAfterOf(err)), signal);
      }
    }
  }

  /** Sends the acknowledgements still owed, without waiting for new SETs. */
  async function flushAcks(deadlineMs: number): Promise<void> {
    if (!stream?.pollUrl || (pendingAck.length === 0 && Object.keys(pendingErrs).length === 0)) return;
    try {
      await client.poll(
        stream.pollUrl,
        { maxEvents: 0, returnImmediately: true, ack: pendingAck, setErrs: pendingErrs },
        Math.max(100, deadlineMs),
        AbortSignal.timeout(Math.max(100, deadlineMs)),
      );
      pendingAck = [];
      pendingErrs = {};
    } catch (err) {
      ctx.logger.warn(
        { err },
        'could not acknowledge the last polled SETs; the transmitter will send them again',
      );
    }
  }

  /** delete_stream_on_stop: deletes the stream in use and forgets it, so the next start creates one. */
  async function deleteStream(deadlineMs: number): Promise<void> {
    const current = stream;
    if (!current || deletedStream === current.id) return;
    deletedStream = current.id;
    try {
      await client.deleteStream(current.id, AbortSignal.timeout(Math.max(100, deadlineMs)));
      await ctx.checkpoints.set({}, STREAM_CHECKPOINT);
      ctx.logger.info({ streamId: current.id }, 'deleted the stream');
    } catch (err) {
      ctx.logger.warn({ err, streamId: current.id }, 'could not delete the stream; the next start adopts it');
    }
  }

  const connector: InboundConnector = {
    async start() {
      stopping = new AbortController();
      const signal = AbortSignal.any([ctx.signal, stopping.signal]);
      ready = startSetup(signal);
      if (config.delivery.method === 'poll') {
        // Through the scheduler, so that of several bridge instances sharing one database only
        // the leader polls (one reader of the stream's queue, one sender of its acks). The run
        // lasts until the instance stops or is no longer the leader; the next leader's run
        // starts within POLL_LEADER_CHECK_MS, and SETs not acknowledged yet are sent again.
        polling = ctx.scheduler.schedule(
          'poll',
          { everyMs: POLL_LEADER_CHECK_MS, runOnStart: true },
          (taskSignal) => (loop = pollLoop(AbortSignal.any([signal, taskSignal]))),
        );
      }
      // The first attempt is awaited so pushes find the stream set up; later attempts run in the background.
      await Promise.race([ready.catch(() => undefined), firstAttempt]);
      if (config.verify_on_start) {
        // After start() has returned and the host routes pushes here, so a verification SET the
        // transmitter sends before answering the request finds this instance ready.
        ready.then(
          () =>
            setImmediate(() => {
              const state = verificationState;
              verificationState = undefined;
              if (!signal.aborted && state !== undefined) void requestVerification(state, signal);
            }),
          () => undefined,
        );
      }
      const interval = config.verification.interval;
      if (interval !== undefined) {
        // Through the scheduler: of several bridge instances sharing one database only the
        // leader asks, so the transmitter gets one request per interval.
        verifying = ctx.scheduler.schedule('verification', { everyMs: interval }, (taskSignal) =>
          periodicVerification(AbortSignal.any([signal, taskSignal])),
        );
      }
    },
    async stop(deadlineMs: number) {
      const started = Date.now();
      stopping?.abort();
      polling?.stop();
      verifying?.stop();
      const waited = new AbortController();
      await Promise.race([loop ?? Promise.resolve(), sleep(deadlineMs / 2, waited.signal)]);
      waited.abort();
      const left = () => deadlineMs - (Date.now() - started);
      // The acknowledgements go first: a stream is deleted with nothing retrieved left unanswered.
      await flushAcks(config.delete_stream_on_stop ? left() / 2 : left() - deadlineMs / 2);
      if (config.delete_stream_on_stop) await deleteStream(left());
    },
  };
  if (config.delivery.method === 'push') {
    connector.handleWebhook = handlePush;
    // RFC 8935 §2.3: what the server refuses before the connector sees it is answered {err, description}.
    answersWithSetErrors(connector);
  }
  return connector;
}
