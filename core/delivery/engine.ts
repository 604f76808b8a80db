import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { ConfigError, PermanentError, RetryableError, classOf, isBridgeError } from '../plugin-api/errors.ts';
import { scrubSecrets } from '../plugin-api/secret.ts';
import type { Clock, Logger, SignedSet } from '../plugin-api/types.ts';
import type { DeliveryOutcome, LastError, LeasedDelivery, PruneResult, Store } from '../storage/types.ts';
import { decideRetry } from './backoff.ts';
import { CircuitBreaker, type CircuitState } from './breaker.ts';
import { policyFor, type DeliveryConfig, type DestinationPolicy } from './config.ts';
import {
  DestinationHeldError,
  type DeliveryNotice,
  type DeliveryObserver,
  type Destination,
  type DestinationInfo,
  type SetSigner,
} from './types.ts';

export interface DeliveryEngineOptions {
  store: Store;
  signer: SetSigner;
  config: DeliveryConfig;
  clock?: Clock;
  logger?: Logger;
  /** This instance's identity in lease rows; unique among instances sharing a database. */
  owner?: string;
  /** Source of randomness for backoff jitter, in [0, 1). */
  random?: () => number;
  observer?: DeliveryObserver;
  /** First wait before recording failed outcomes again; it doubles each time, up to 5 s. */
  outcomeRetryBaseMs?: number;
}

const systemClock: Clock = { now: () => new Date() };
const MAX_ERROR_MESSAGE = 2000;
/** Tries to record a batch of outcomes (about 11 s of backoff) before recording them one by one. */
const OUTCOME_WRITE_ATTEMPTS = 9;
const PRUNE_BATCH = 5000;
/** Longest wait between leasing rounds while the store keeps failing. */
const MAX_LEASE_BACKOFF_MS = 30_000;
/**
 * The longest a destination's Retry-After is honoured (the HTTP layer's own bound): a receiver,
 * or a connector's rate-limit arithmetic, asking for days or forever would otherwise stop every
 * delivery to it until the bridge restarts.
 */
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;
/** How long a destination that held a delivery (DestinationHeldError) is left alone by default. */
const HELD_RETRY_MS = 1_000;
/** How often a lasting leasing outage is logged again. */
const OUTAGE_LOG_INTERVAL_MS = 60_000;

/**
 * Delivers the outbox. One worker per destination leases due rows in batches, signs each
 * SET for the destination, hands it over and records the outcome, within the destination's
 * concurrency limit, circuit breaker and retry policy. Outcomes are written in batches; a
 * crash before an outcome is written only means the row is delivered again (same jti) once
 * its lease expires.
 */
export class DeliveryEngine {
  readonly owner: string;
  readonly #ctx: WorkerContext;
  readonly #workers = new Map<string, DestinationWorker>();
  #running = false;
  #maintenance: NodeJS.Timeout | undefined;
  #maintaining: Promise<unknown> | undefined;

  constructor(options: DeliveryEngineOptions) {
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const clock = options.clock ?? systemClock;
    const observer = options.observer ?? {};
    this.#ctx = {
      store: options.store,
      signer: options.signer,
      config: options.config,
      clock,
      logger: options.logger,
      owner: this.owner,
      random: options.random ?? Math.random,
      observer,
      writer: new OutcomeWriter(
        options.store,
        clock,
        observer,
        options.logger,
        options.outcomeRetryBaseMs ?? 50,
      ),
      isolation: new Isolation(() => this.#workers.values()),
    };
  }

  register(destination: Destination): void {
    if (this.#workers.has(destination.id)) {
      throw new ConfigError(`destination ${destination.id} is already registered`, {
        code: 'SSF_ERR_DELIVERY_DUPLICATE_DESTINATION',
      });
    }
    const worker = new DestinationWorker(destination, this.#ctx);
    const { attemptTimeoutMs } = worker.policy;
    if (attemptTimeoutMs >= this.#ctx.config.lease_duration) {
      throw new ConfigError(
        `destination ${destination.id}: its attempt_timeout (${attemptTimeoutMs} ms) must be shorter than delivery.lease_duration (${this.#ctx.config.lease_duration} ms), or a slow attempt loses its lease mid-flight and the same SET is delivered again while it runs`,
        { code: 'SSF_ERR_DELIVERY_LEASE_TOO_SHORT' },
      );
    }
    this.#workers.set(destination.id, worker);
    if (this.#running) worker.start();
  }

  /** Stops delivering to a destination; its queued rows stay in the outbox. */
  async unregister(destinationId: string, deadlineMs = 10_000): Promise<void> {
    const worker = this.#workers.get(destinationId);
    if (worker === undefined) return;
    this.#workers.delete(destinationId);
    await worker.stop(deadlineMs);
    await this.#ctx.writer.flush();
  }

  destinations(): DestinationInfo[] {
    return [...this.#workers.values()].map(({ destination: { id, kind, target } }) => ({ id, kind, target }));
  }

  /** The settings in force for a destination (registered or not). */
  policy(destinationId: string): DestinationPolicy {
    return this.#workers.get(destinationId)?.policy ?? policyFor(this.#ctx.config, destinationId);
  }

  circuitState(destinationId: string): CircuitState | undefined {
    return this.#workers.get(destinationId)?.breaker.state(this.#ctx.clock.now().getTime());
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const worker of this.#workers.values()) worker.start();
    const every = this.#ctx.config.maintenance_interval;
    this.#maintenance = setInterval(() => {
      if (this.#maintaining !== undefined) return;
      this.#maintaining = this.maintain()
        .catch((err: unknown) =>
          this.#ctx.logger?.warn({ err: errorMessage(err) }, 'outbox maintenance failed'),
        )
        .finally(() => (this.#maintaining = undefined));
    }, every);
    this.#maintenance.unref();
    void this.#warnOrphans();
  }

  /**
   * Stops leasing, lets in-flight deliveries finish for up to `deadlineMs`, then aborts the rest
   * and gives their rows back (due at once, attempt not counted). Idempotent.
   */
  async stop(deadlineMs = 10_000): Promise<void> {
    this.#running = false;
    clearInterval(this.#maintenance);
    this.#maintenance = undefined;
    await Promise.all([...this.#workers.values()].map((w) => w.stop(deadlineMs)));
    await this.#maintaining;
    await this.#ctx.writer.flush();
  }

  /** Wakes the workers of these destinations (all when omitted): new rows are waiting. */
  notify(destinationIds?: Iterable<string>): void {
    if (destinationIds === undefined) {
      for (const worker of this.#workers.values()) worker.wake();
      return;
    }
    for (const id of destinationIds) this.#workers.get(id)?.wake();
  }

  /** One leasing round for a destination; resolves to the number of deliveries started. */
  async pump(destinationId: string): Promise<number> {
    const worker = this.#workers.get(destinationId);
    if (worker === undefined) throw new Error(`destination ${destinationId} is not registered`);
    return worker.pump();
  }

  /** Resolves once every started delivery has finished and its outcome is written. */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.#workers.values()].flatMap((w) => [...w.inFlight(), ...w.isolating()]);
      if (busy.length === 0) break;
      await Promise.all(busy);
    }
    await this.#ctx.writer.flush();
  }

  /** Prunes delivered rows past retention and expired dedupe keys. */
  async maintain(): Promise<PruneResult> {
    const now = this.#ctx.clock.now();
    const deliveredBefore = new Date(now.getTime() - this.#ctx.config.delivered_retention);
    const total: PruneResult = { deliveries: 0, events: 0, dedupeKeys: 0, oneTimeIds: 0, setErrors: 0 };
    for (;;) {
      const r = await this.#ctx.store.prune({ now, deliveredBefore, limit: PRUNE_BATCH });
      for (const key of Object.keys(total) as Array<keyof PruneResult>) total[key] += r[key];
      if (Math.max(...Object.values(r)) < PRUNE_BATCH) return total;
    }
  }

  async #warnOrphans(): Promise<void> {
    try {
      for (const [destinationId, count] of await this.#ctx.store.deliveries.backlog()) {
        if (!this.#workers.has(destinationId) && !destinationId.startsWith('stream:')) {
          this.#ctx.logger?.warn(
            { destination: destinationId, backlog: count },
            'deliveries are queued for a destination that is not configured; they wait until it is configured again',
          );
        }
      }
    } catch (err) {
      this.#ctx.logger?.warn({ err: errorMessage(err) }, 'could not read the outbox backlog');
    }
  }
}

interface WorkerContext {
  store: Store;
  signer: SetSigner;
  config: DeliveryConfig;
  clock: Clock;
  logger: Logger | undefined;
  owner: string;
  random: () => number;
  observer: DeliveryObserver;
  writer: OutcomeWriter;
  isolation: Isolation;
}

/**
 * Runs a suspect delivery alone in this process: one whose earlier attempts ended with the
 * process (its lease expired without an outcome) and whose next interruption would be its
 * last. While it runs, no other row is leased or attempted here, so if the process goes down
 * again, the suspect is the only row it held and the only one whose interrupted count reaches
 * the limit: rows that were merely in flight beside an event that crashes the bridge are
 * delivered on their own turn instead of being dead-lettered with it.
 */
class Isolation {
  #closed = false;

  constructor(private readonly workers: () => Iterable<DestinationWorker>) {}

  /** Whether a suspect is being run alone: workers neither lease nor start anything meanwhile. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Waits until every other worker has handed back its leased rows and every attempt in the
   * process has ended, then runs `work`. Resolves to false at once, running nothing, when another
   * suspect holds the process already.
   */
  async run(requester: DestinationWorker, work: () => Promise<void>): Promise<boolean> {
    if (this.#closed) return false;
    this.#closed = true;
    try {
      await Promise.all(
        [...this.workers()].map((w) => (w === requester ? Promise.all(w.inFlight()) : w.quiesce())),
      );
      await work();
      return true;
    } finally {
      this.#closed = false;
      for (const worker of this.workers()) worker.wake();
    }
  }
}

class StopAbort extends Error {
  constructor() {
    super('the delivery engine is stopping');
  }
}

/** A leased row waiting for a slot, with its SET once signing started (see #signAhead). */
interface Ready {
  delivery: LeasedDelivery;
  leasedAt: number;
  signed?: Promise<SignedSet>;
}

/** Leases and delivers for one destination. */
class DestinationWorker {
  readonly policy: DestinationPolicy;
  readonly breaker: CircuitBreaker;
  readonly #info: DestinationInfo;
  readonly #inFlight = new Set<Promise<void>>();
  /** Outcomes of finished attempts not yet written; bounded so a slow store holds back leasing. */
  readonly #recording = new Set<Promise<void>>();
  /**
   * Leased rows not started yet. While the circuit is closed the worker leases a batch ahead of
   * its free slots, so one lease transaction serves many deliveries instead of one per slot.
   */
  readonly #ready: Ready[] = [];
  /** Aborts each running attempt (with the reason given); stop() uses it past its deadline. */
  readonly #aborters = new Set<AttemptDeadline>();
  #holdUntil = 0;
  /**
   * The last pump's lease got all the rows it asked for, so more may be due. When it got fewer,
   * the outbox had nothing else due for this destination: pumping again at once would only run
   * an empty lease, and every change that makes a row startable wakes the worker instead (new
   * rows, a written outcome, a slot freed while rows wait for it) or is a due time the idle
   * delay waits for.
   */
  #leaseFilled = false;
  /** The last pump found every slot taken: a finished attempt must wake the worker. */
  #waitingForSlot = false;
  #pumpChain: Promise<unknown> = Promise.resolve();
  /** A suspect delivery being run alone (see Isolation), from waiting for the process to quiesce to its outcome. */
  #isolated: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  #stopping = false;
  #woken = false;
  #wakePending = false;
  #wakeSleeper: (() => void) | undefined;

  constructor(
    readonly destination: Destination,
    private readonly ctx: WorkerContext,
  ) {
    this.policy = policyFor(ctx.config, destination.id, destination.policy);
    this.#info = { id: destination.id, kind: destination.kind, target: destination.target };
    this.breaker = new CircuitBreaker(this.policy.breaker, (state) => {
      ctx.logger?.info({ destination: destination.id, circuit: state }, `circuit ${state.replace('_', '-')}`);
      ctx.observer.circuit?.(destination.id, state);
    });
  }

  /** Attempts running, and finished attempts whose outcome is still being written. */
  inFlight(): Promise<void>[] {
    return [...this.#inFlight, ...this.#recording];
  }

  /** The suspect delivery being run alone, if any. */
  isolating(): Promise<void>[] {
    return this.#isolated === undefined ? [] : [this.#isolated];
  }

  /** For a suspect run alone elsewhere: hands back the rows leased ahead and lets attempts end. */
  async quiesce(): Promise<void> {
    await this.#pumpChain;
    await this.#releaseReady();
    await Promise.all(this.inFlight());
  }

  start(): void {
    if (this.#loop !== undefined) return;
    this.#stopping = false;
    this.#loop = this.#run();
  }

  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    this.wake();
    await this.#loop;
    this.#loop = undefined;
    await this.#pumpChain;
    await this.#releaseReady();
    if (this.#inFlight.size > 0) {
      const timer = setTimeout(
        () => {
          const reason = new StopAbort();
          for (const deadline of this.#aborters) deadline.abort(reason);
        },
        Math.max(0, deadlineMs),
      );
      await Promise.all(this.#inFlight);
      clearTimeout(timer);
    }
    // A suspect that had not started by now is handed back (it checks #stopping first).
    await this.#isolated;
    await Promise.all(this.#recording);
  }

  wake(): void {
    this.#woken = true;
    this.#wakeSleeper?.();
  }

  /**
   * Wakes the worker once the event loop has run what it holds: the attempts that end in one
   * turn (their answers arrive together) then free their slots to one pump, instead of each
   * running a pump that starts one row.
   */
  #wakeSoon(): void {
    if (this.#wakePending) return;
    this.#wakePending = true;
    setImmediate(() => {
      this.#wakePending = false;
      this.wake();
    });
  }

  pump(): Promise<number> {
    const run = this.#pumpChain.then(() => this.#pumpOnce());
    this.#pumpChain = run.catch(() => undefined);
    return run;
  }

  async #pumpOnce(): Promise<number> {
    const { store, clock, config, owner } = this.ctx;
    const now = clock.now();
    const nowMs = now.getTime();
    const allowance = this.breaker.allowance(nowMs);
    if (
      nowMs < this.#holdUntil ||
      allowance <= 0 ||
      this.ctx.isolation.closed ||
      (await this.destination.isPaused?.()) === true
    ) {
      // Rows leased ahead go back while the destination waits (or a suspect runs alone), so
      // another instance may take them.
      await this.#releaseReady();
      return 0;
    }
    const { maxInFlight } = this.policy;
    const free = Math.min(
      maxInFlight - this.#inFlight.size,
      2 * maxInFlight - this.#inFlight.size - this.#recording.size,
      allowance,
    );
    this.#waitingForSlot = free <= 0;
    if (free <= 0) return 0;
    this.#leaseFilled = false;
    const closed = allowance === Infinity;
    if (this.#ready.length < (closed ? Math.max(free, maxInFlight) : free)) {
      const held = this.#inFlight.size + this.#ready.length;
      const room = closed ? maxInFlight + config.batch_size - held : free - this.#ready.length;
      const limit = Math.min(config.batch_size, room);
      if (limit > 0) {
        const leased = await store.deliveries.lease({
          destinationId: this.destination.id,
          owner,
          limit,
          now,
          leaseMs: config.lease_duration,
        });
        for (const delivery of leased) this.#ready.push(this.#signAhead({ delivery, leasedAt: nowMs }));
        this.#leaseFilled = leased.length === limit;
      }
    }
    this.#giveUpExhausted();
    // A row whose next interruption would be its last runs alone, so that what ends its
    // retrying is its own attempt. (Earlier ones run as usual: after a kill, every row the
    // process held counts one, and running all of those alone would slow the restart.)
    const { maxInterruptedAttempts } = this.policy.retry;
    const suspect = this.#ready.findIndex(
      ({ delivery }) =>
        delivery.interruptedAttempts > 0 && delivery.interruptedAttempts + 1 >= maxInterruptedAttempts,
    );
    if (suspect >= 0) return this.#runAlone(this.#ready.splice(suspect, 1)[0]!);
    let started = 0;
    const stale: LeasedDelivery[] = [];
    while (started < free && this.#ready.length > 0) {
      const { delivery, leasedAt, signed } = this.#ready.shift()!;
      if (this.#isStale(leasedAt)) {
        stale.push(delivery);
      } else {
        this.#launch(delivery, signed);
        started += 1;
      }
    }
    if (stale.length > 0) await this.#release(stale);
    return started;
  }

  /**
   * Starts signing a row as it is leased, so a slot is held for the push alone. Under load the
   * event loop takes a few milliseconds to come back to a signature made off it (on the signing
   * thread or libuv's pool), as long as the push itself takes: signed in its slot, each attempt
   * held the slot twice as long, and the destination saw half the requests in flight that
   * max_in_flight allows. A lease's rows are signed together, so ES256 signatures reach the
   * signing thread as one batch. Never a row whose earlier attempt was interrupted: it may be the
   * event that brings the bridge down, and must not be worked on beside others (see Isolation).
   */
  #signAhead(ready: Ready): Ready {
    if (ready.delivery.interruptedAttempts > 0) return ready;
    ready.signed = this.#sign(ready.delivery);
    // A row handed back unattempted drops its signature; a failure is the attempt's to report.
    ready.signed.catch(() => undefined);
    return ready;
  }

  /** Async, so a signer that throws rather than rejects fails the attempt the same way. */
  async #sign(delivery: LeasedDelivery): Promise<SignedSet> {
    return this.ctx.signer.sign(delivery.event, this.#info, {
      jti: delivery.jti,
      attempt: delivery.attempts - 1,
    });
  }

  /**
   * A row starts only if its attempt can end inside its lease, and not after waiting half of it;
   * otherwise it goes back and is leased afresh. An attempt that outlived its lease would be
   * offered again by another worker while it still runs, and its outcome discarded.
   */
  #isStale(leasedAt: number): boolean {
    const waited = this.ctx.clock.now().getTime() - leasedAt;
    const { lease_duration: leaseMs } = this.ctx.config;
    return waited > leaseMs / 2 || waited + this.policy.attemptTimeoutMs >= leaseMs;
  }

  /** Dead-letters, unsent, the leased rows whose earlier attempts kept ending without an outcome. */
  #giveUpExhausted(): void {
    const { maxAttempts, maxInterruptedAttempts } = this.policy.retry;
    for (let i = this.#ready.length - 1; i >= 0; i--) {
      const { delivery } = this.#ready[i]!;
      if (delivery.attempts > maxAttempts) {
        // Every attempt allowed was started and the last recorded no outcome (the bridge died
        // or lost the lease mid-delivery): an event that crashes the bridge ends here.
        this.#giveUp(delivery, 'max_attempts', {
          code: 'SSF_ERR_DELIVERY_ATTEMPTS_UNFINISHED',
          message: `max_attempts (${maxAttempts}) attempts were started and the last recorded no outcome (the bridge stopped or lost the lease mid-delivery); not attempted again`,
        });
      } else if (delivery.interruptedAttempts >= maxInterruptedAttempts) {
        // Without max_attempts, the same: its attempts kept ending with the process, the last of
        // them run alone in it (see Isolation), so the event is what brings the bridge down;
        // trying again at every restart would only repeat that until max_age.
        this.#giveUp(delivery, 'max_interrupted_attempts', {
          code: 'SSF_ERR_DELIVERY_ATTEMPTS_INTERRUPTED',
          message: `${delivery.interruptedAttempts} attempts in a row ended without an outcome (the bridge was killed, crashed or stalled during each; max_interrupted_attempts is ${maxInterruptedAttempts}); not attempted again`,
        });
      } else {
        continue;
      }
      this.#ready.splice(i, 1);
    }
  }

  /**
   * Runs a suspect row (its last attempt ended with the process) alone in the process, and hands
   * back every other row this worker leased. The pump returns at once; the process stays closed
   * to other attempts until the suspect's outcome is written (see Isolation).
   */
  async #runAlone(suspect: Ready): Promise<number> {
    await this.#releaseReady();
    const { delivery } = suspect;
    let launched = false;
    const isolated = this.ctx.isolation
      .run(this, async () => {
        if (this.#stopping || this.#isStale(suspect.leasedAt)) return;
        this.ctx.logger?.info(
          {
            destination: delivery.destinationId,
            jti: delivery.jti,
            interruptedAttempts: delivery.interruptedAttempts,
          },
          'delivery interrupted before (the bridge went down during its attempt); attempting it alone',
        );
        launched = true;
        this.#launch(delivery);
        await Promise.all(this.inFlight());
      })
      .catch((err: unknown) =>
        this.ctx.logger?.error(
          { destination: this.destination.id, err: errorMessage(err) },
          'isolation failed',
        ),
      )
      // Not attempted (stopping, stale, another suspect first, or a failure above): handed back
      // now, since a lease left to expire would count an interruption it did not have.
      .then(() => (launched ? undefined : this.#release([delivery])))
      .catch((err: unknown) =>
        this.ctx.logger?.warn(
          { destination: this.destination.id, err: errorMessage(err) },
          'could not hand back a lease',
        ),
      )
      .finally(() => {
        if (this.#isolated === isolated) this.#isolated = undefined;
        this.wake();
      });
    this.#isolated = isolated;
    return 1;
  }

  /** Dead-letters a leased row whose earlier attempts ended without an outcome; not attempted. */
  #giveUp(
    delivery: LeasedDelivery,
    reason: 'max_attempts' | 'max_interrupted_attempts',
    cause: { code: string; message: string },
  ): void {
    const error: LastError = { class: 'retryable', ...cause };
    const notice: DeliveryNotice = {
      destinationId: delivery.destinationId,
      jti: delivery.jti,
      eventId: delivery.event.id,
      eventType: delivery.event.type,
      // This lease sends nothing: the attempts are those started before it.
      attempts: delivery.attempts - 1,
    };
    this.ctx.logger?.warn({ ...notice, error, reason }, 'delivery retries exhausted; dead-lettered');
    this.ctx.observer.deadLettered?.({ ...notice, error, reason });
    this.#record({
      kind: 'dead',
      id: delivery.id,
      leaseToken: delivery.leaseToken,
      error,
      notAttempted: true,
    });
  }

  async #releaseReady(): Promise<void> {
    if (this.#ready.length === 0) return;
    await this.#release(this.#ready.splice(0).map((r) => r.delivery));
  }

  /** Hands leases back unattempted: due at once, attempt not counted. */
  async #release(deliveries: LeasedDelivery[]): Promise<void> {
    await Promise.all(
      deliveries.map((d) => this.ctx.writer.write({ kind: 'release', id: d.id, leaseToken: d.leaseToken })),
    );
  }

  async #run(): Promise<void> {
    const { config, logger } = this.ctx;
    // While the store cannot be reached the worker waits longer after each failed round (from
    // poll_interval, doubling, up to MAX_LEASE_BACKOFF_MS) and logs the outage when it begins and
    // then at most once a minute, rather than leasing and warning every poll_interval.
    let failures = 0;
    let loggedAt = 0;
    while (!this.#stopping) {
      this.#woken = false;
      let started: number;
      try {
        started = await this.pump();
      } catch (err) {
        failures += 1;
        const nowMs = Date.now();
        if (failures === 1 || nowMs - loggedAt >= OUTAGE_LOG_INTERVAL_MS) {
          loggedAt = nowMs;
          logger?.warn(
            { destination: this.destination.id, err: errorMessage(err), failures },
            'leasing failed',
          );
        }
        const ceiling = Math.max(config.poll_interval, MAX_LEASE_BACKOFF_MS);
        await this.#sleep(Math.min(ceiling, config.poll_interval * 2 ** Math.min(failures - 1, 30)));
        continue;
      }
      if (failures > 0) {
        logger?.info({ destination: this.destination.id, failures }, 'leasing works again');
        failures = 0;
      }
      if (this.#stopping) break;
      if (started > 0 && this.#leaseFilled) continue;
      await this.#sleep(await this.#idleDelay());
    }
  }

  /** How long to wait before looking again: until the next due row, probe or hold ends. */
  async #idleDelay(): Promise<number> {
    const nowMs = this.ctx.clock.now().getTime();
    let delay = this.ctx.config.poll_interval;
    if (this.#holdUntil > nowMs) delay = Math.min(delay, this.#holdUntil - nowMs);
    const reopensAt = this.breaker.reopensAt();
    if (reopensAt !== undefined) delay = Math.min(delay, reopensAt - nowMs);
    const canStart =
      this.#holdUntil <= nowMs &&
      this.#inFlight.size < this.policy.maxInFlight &&
      this.breaker.allowance(nowMs) > 0;
    if (canStart) {
      const due = await this.ctx.store.deliveries.nextDueAt(this.destination.id).catch(() => undefined);
      // A row due now that was not leased waits behind an earlier row of its subject.
      if (due !== undefined && due.getTime() > nowMs) delay = Math.min(delay, due.getTime() - nowMs);
    }
    return Math.max(1, delay);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken || this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakeSleeper = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakeSleeper = done;
    });
  }

  /**
   * Runs one attempt. Its slot frees as soon as the destination answered; the outcome is then
   * written in the next group commit. Until it is, the row stays leased: a crash before the
   * write means the same SET (same jti) is delivered again once the lease expires.
   */
  #launch(delivery: LeasedDelivery, signed?: Promise<SignedSet>): void {
    const probe = this.breaker.attemptStarted();
    const attempt: Promise<void> = this.#attempt(delivery, probe, signed)
      .then(
        (outcome) => this.#record(outcome),
        (err: unknown) => {
          // No outcome: the row stays leased and is attempted again when its lease expires. A
          // probe that crashed must not keep its circuit half-open with the probe slot taken.
          this.breaker.neutral(probe);
          this.ctx.logger?.error(
            { destination: this.destination.id, err: errorMessage(err) },
            'delivery crashed',
          );
        },
      )
      .finally(() => {
        this.#inFlight.delete(attempt);
        // The freed slot matters to rows waiting for one; any other row it could concern becomes
        // startable when this attempt's outcome is written, which wakes the worker (#record).
        if (this.#waitingForSlot || this.#leaseFilled || this.#ready.length > 0) this.#wakeSoon();
      });
    this.#inFlight.add(attempt);
  }

  #record(outcome: DeliveryOutcome): void {
    const written: Promise<void> = this.ctx.writer.write(outcome).finally(() => {
      this.#recording.delete(written);
      this.wake();
    });
    this.#recording.add(written);
  }

  async #attempt(
    delivery: LeasedDelivery,
    probe: boolean,
    signed: Promise<SignedSet> | undefined,
  ): Promise<DeliveryOutcome> {
    const { clock, observer } = this.ctx;
    const started = clock.now();
    const notice: DeliveryNotice = {
      destinationId: delivery.destinationId,
      jti: delivery.jti,
      eventId: delivery.event.id,
      eventType: delivery.event.type,
      attempts: delivery.attempts,
    };
    let set: SignedSet | undefined;
    let receipt: unknown;
    try {
      // Signing shares the attempt deadline: a remote key service that hangs is a timeout too
      // (a signature started ahead counts from the attempt's start).
      receipt = await this.#withDeadline(async (signal) => {
        set = await (signed ?? this.#sign(delivery));
        return this.destination.deliver(set, signal);
      });
    } catch (err) {
      if (err instanceof DestinationHeldError) {
        this.breaker.neutral(probe);
        const wait = boundedRetryAfter(err.retryAfterMs) ?? HELD_RETRY_MS;
        this.#holdUntil = Math.max(this.#holdUntil, clock.now().getTime() + wait);
      }
      return err instanceof StopAbort || err instanceof DestinationHeldError
        ? { kind: 'release', id: delivery.id, leaseToken: delivery.leaseToken }
        : this.#failure(delivery, notice, err, set, probe);
    }
    // deliver() resolved: the destination took the SET, whatever the receipt looks like (a
    // connector resolving with nothing is not a failure to retry, which would send it again).
    this.breaker.succeeded();
    const finished = clock.now();
    const status = (receipt as { status?: unknown } | null | undefined)?.status;
    observer.delivered?.({
      ...notice,
      durationMs: finished.getTime() - started.getTime(),
      sinceAcceptedMs: finished.getTime() - delivery.event.acceptedAt.getTime(),
      ...(typeof status === 'number' ? { status } : {}),
    });
    return { kind: 'delivered', id: delivery.id, leaseToken: delivery.leaseToken };
  }

  /** Classifies a failed attempt into a retry or a dead letter. */
  #failure(
    delivery: LeasedDelivery,
    notice: DeliveryNotice,
    err: unknown,
    set: SignedSet | undefined,
    probe: boolean,
  ): DeliveryOutcome {
    const { clock, observer, random, logger } = this.ctx;
    const now = clock.now();
    const error = lastErrorOf(err);
    const base = {
      id: delivery.id,
      leaseToken: delivery.leaseToken,
      error,
      ...(set ? { setJwt: set.jwt } : {}),
    };
    if (classOf(err) === 'permanent') {
      // The destination answered (or the event cannot be signed for it): no health signal.
      this.breaker.neutral(probe);
      if (err instanceof PermanentError && err.authFailure)
        observer.authFailure?.(delivery.destinationId, error);
      logger?.warn({ ...notice, error }, 'delivery refused permanently; dead-lettered');
      observer.deadLettered?.({ ...notice, error, reason: 'permanent' });
      return { kind: 'dead', ...base };
    }
    if (set === undefined) this.breaker.neutral(probe);
    else this.breaker.failed(now.getTime(), probe);
    const retryAfterMs = err instanceof RetryableError ? boundedRetryAfter(err.retryAfterMs) : undefined;
    // Retry-After speaks for the whole destination, so its other deliveries wait as well.
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      this.#holdUntil = Math.max(this.#holdUntil, now.getTime() + retryAfterMs);
    }
    const decision = decideRetry({
      attempts: delivery.attempts,
      firstAttemptAt: delivery.firstAttemptAt,
      now,
      retry: this.policy.retry,
      retryAfterMs,
      random,
    });
    if (decision.kind === 'dead') {
      logger?.warn(
        { ...notice, error, reason: decision.reason },
        'delivery retries exhausted; dead-lettered',
      );
      observer.deadLettered?.({ ...notice, error, reason: decision.reason });
      return { kind: 'dead', ...base };
    }
    observer.retrying?.({ ...notice, error, dueAt: decision.dueAt });
    return { kind: 'retry', ...base, dueAt: decision.dueAt };
  }

  /** Runs one delivery call under the attempt timeout and the worker's stop deadline. */
  async #withDeadline<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = new AttemptDeadline(this.policy.attemptTimeoutMs);
    this.#aborters.add(deadline);
    try {
      return await deadline.run(call);
    } finally {
      deadline.dispose();
      this.#aborters.delete(deadline);
    }
  }
}

/**
 * One attempt's abort: by its timeout, or by the worker's stop deadline. A connector that
 * ignores its signal still cannot hold the worker past the deadline: the abort also rejects the
 * promise the attempt awaits, whatever the call does. (Kept in a set the worker walks rather than
 * as event listeners: a listener added and removed per attempt costs more. A class rather than
 * closures: the tsx loader wraps each named closure in a call that sets its name, per attempt.)
 */
class AttemptDeadline {
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  #reject: ((reason: Error) => void) | undefined;

  constructor(timeoutMs: number) {
    this.#timer = setTimeout(
      () =>
        this.abort(
          new RetryableError(`delivery attempt timed out after ${timeoutMs} ms`, {
            code: 'SSF_ERR_DELIVERY_TIMEOUT',
          }),
        ),
      timeoutMs,
    );
  }

  /** Settled by whichever comes first, the call or the abort (one promise, not a race of two). */
  run<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      call(this.#controller.signal).then(resolve, reject);
    });
  }

  abort(reason: Error): void {
    this.#controller.abort(reason);
    this.#reject?.(reason);
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * Writes outcomes in batches: outcomes that finish together share one transaction. Each worker
 * stops starting attempts while max_in_flight of its outcomes wait here, which bounds the
 * outcomes held in memory while the store is unreachable.
 */
class OutcomeWriter {
  readonly #queue: Array<{ outcome: DeliveryOutcome; done: () => void }> = [];
  #draining: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly observer: DeliveryObserver,
    private readonly logger: Logger | undefined,
    private readonly retryBaseMs: number,
  ) {}

  write(outcome: DeliveryOutcome): Promise<void> {
    return new Promise((done) => {
      this.#queue.push({ outcome, done });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#draining !== undefined) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = undefined;
      // Outcomes queued after the last batch was taken start the next drain.
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async flush(): Promise<void> {
    while (this.#draining !== undefined) await this.#draining;
  }

  async #drain(): Promise<void> {
    // Let outcomes finishing in the same turn join this batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, 500);
      const outcomes = batch.map((b) => b.outcome);
      if (!(await this.#writeWithRetries(outcomes)) && outcomes.length > 1)
        await this.#writeOneByOne(outcomes);
      for (const b of batch) b.done();
    }
  }

  /** Writes the outcomes in one transaction, retrying with backoff; false if it never succeeded. */
  async #writeWithRetries(outcomes: DeliveryOutcome[]): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.#applied(outcomes.length, await this.store.deliveries.complete(outcomes, this.clock.now()));
        return true;
      } catch (err) {
        if (attempt >= OUTCOME_WRITE_ATTEMPTS - 1) {
          this.logger?.error(
            { err: errorMessage(err), outcomes: outcomes.length },
            outcomes.length > 1
              ? 'could not record delivery outcomes together; recording them one by one'
              : 'could not record delivery outcomes',
          );
          return false;
        }
        this.logger?.warn({ err: errorMessage(err) }, 'recording delivery outcomes failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, this.retryBaseMs * 2 ** attempt)));
      }
    }
  }

  /**
   * After a batch failed every retry, one outcome the store refuses must not cost the others
   * their record (each lost one means a repeated delivery). When the first few fail too, the
   * store itself is down and the rest are not tried. Unwritten outcomes are safe to drop only as
   * this last resort: their rows stay leased and are delivered again, with the same jti, when the
   * lease expires.
   */
  async #writeOneByOne(outcomes: DeliveryOutcome[]): Promise<void> {
    let written = 0;
    let failed = 0;
    let lastErr: unknown;
    for (const outcome of outcomes) {
      if (written === 0 && failed >= 3) break;
      try {
        this.#applied(1, await this.store.deliveries.complete([outcome], this.clock.now()));
        written++;
      } catch (err) {
        failed++;
        lastErr = err;
        this.logger?.error(
          { err: errorMessage(err), delivery: outcome.id, outcome: outcome.kind },
          'could not record a delivery outcome; the delivery is attempted again when its lease expires',
        );
      }
    }
    const untried = outcomes.length - written - failed;
    if (untried > 0) {
      this.logger?.error(
        { err: errorMessage(lastErr), outcomes: untried },
        'could not record delivery outcomes; the deliveries are attempted again when their leases expire',
      );
    }
  }

  #applied(written: number, applied: number): void {
    if (applied >= written) return;
    this.logger?.warn(
      { lost: written - applied },
      'delivery outcomes arrived after their lease expired; another worker owns those rows now',
    );
    this.observer.leaseLost?.(written - applied);
  }
}

/** A positive Retry-After, at most MAX_RETRY_AFTER_MS; undefined for none, 0, negative or NaN. */
function boundedRetryAfter(ms: number | undefined): number | undefined {
  return typeof ms === 'number' && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : undefined;
}

function errorMessage(err: unknown): string {
  return scrubSecrets(describe(err));
}

/**
 * What a thrown value says, whatever it is: connectors may throw values that are no Error, some
 * of which have no string form at all (an object without a prototype), and the classification
 * of a failure must not itself fail.
 */
function describe(err: unknown): string {
  try {
    if (err instanceof Error) return String(err.message);
    return String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}

/** What is recorded about a failure: class, stable code, message (secrets scrubbed), status. */
export function lastErrorOf(err: unknown): LastError {
  const message = errorMessage(err).slice(0, MAX_ERROR_MESSAGE);
  const status = isBridgeError(err) ? err.detail?.status : undefined;
  return {
    class: classOf(err),
    code: isBridgeError(err) ? err.code : 'SSF_ERR_DELIVERY_UNEXPECTED',
    message,
    ...(typeof status === 'number' ? { status } : {}),
  };
}
