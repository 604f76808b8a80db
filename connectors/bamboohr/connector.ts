import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  PermanentError,
  RetryableError,
  type EventDraft,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type InboundResponse,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import { createBambooHrClient, type BambooHrClient } from './client.ts';
import type { BambooHrConfig } from './config.ts';
import { applyDeletion, applyWorker, nextDue, notHeld, releaseDue } from '../_shared/hr-leaver.ts';
import {
  changesOfWebhook,
  emptyState,
  formToWebhook,
  policyOf,
  stateSchema,
  workerFromEmployee,
  type BambooEmployee,
  type BambooHrState,
  type EmployeeChange,
} from './mapping.ts';

/** Employees fetched per committed batch while polling. */
const POLL_BATCH = 50;

interface Resolved {
  change: EmployeeChange;
  /** The employee as the API answers now; undefined for deletions and vanished employees. */
  employee?: BambooEmployee | undefined;
}

/**
 * BambooHR: event-based webhooks (HMAC-verified, then the employee is fetched) and/or polling of
 * /employees/changed. Every change is applied to the checkpoint and committed with its events.
 */
export function createBambooHr(ctx: InboundContext<BambooHrState>, config: BambooHrConfig): InboundConnector {
  const policy = policyOf(config);
  const keys = [config.webhook_private_key, config.previous_webhook_private_key]
    .filter((k) => k !== undefined)
    .map((k) => Buffer.from(k.reveal(), 'utf8'));
  const webhooks = ctx.metrics.counter('bamboohr_webhooks_total', 'Webhook requests by outcome', ['outcome']);
  const records = ctx.metrics.counter('bamboohr_employees_total', 'Employee changes processed, by outcome', [
    'outcome',
  ]);
  const emitted = ctx.metrics.counter('bamboohr_events_total', 'Events emitted, by type', ['type']);
  const tasks: ScheduledTask[] = [];
  let client: BambooHrClient | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  function api(): BambooHrClient {
    client ??= createBambooHrClient(ctx as InboundContext<unknown>, config);
    return client;
  }

  /** Changes to the checkpoint are applied one at a time. */
  function serial<T>(work: () => Promise<T>): Promise<T> {
    const next = running.then(work, work);
    running = next.catch(() => undefined);
    return next;
  }

  async function loadState(): Promise<BambooHrState> {
    const raw = await ctx.checkpoints.get();
    if (raw === undefined) return emptyState();
    const parsed = stateSchema.safeParse(raw);
    if (!parsed.success) {
      throw new PermanentError('the stored BambooHR checkpoint is not readable; reset it to start over', {
        code: 'SSF_ERR_BAMBOOHR_STATE',
      });
    }
    return parsed.data;
  }

  async function commit(state: BambooHrState, events: EventDraft[]): Promise<void> {
    await ctx.emit(events, { checkpoint: { value: state } });
    for (const e of events) emitted.inc({ type: e.type });
  }

  /** Fetches what the changes name (outside the lock: no state is read). */
  async function resolve(changes: EmployeeChange[], signal?: AbortSignal): Promise<Resolved[]> {
    const out: Resolved[] = [];
    for (const change of changes) {
      if (change.action === 'deleted') out.push({ change });
      else out.push({ change, employee: await api().getEmployee(change.employeeId, signal) });
    }
    return out;
  }

  /** Applies resolved changes to the stored state and commits it with their due events. */
  async function apply(resolved: Resolved[], finish?: (state: BambooHrState) => void): Promise<number> {
    return serial(async () => {
      const now = ctx.clock.now();
      const state = await loadState();
      const events: EventDraft[] = [];
      for (const { change, employee } of resolved) {
        let outcome;
        if (change.action === 'deleted') {
          outcome = applyDeletion(state, change.employeeId, undefined, policy, change.at, now);
        } else if (!employee) {
          records.inc({ outcome: 'vanished' });
          ctx.logger.info({ employee: change.employeeId }, 'employee no longer exists in BambooHR; skipped');
          continue;
        } else {
          try {
            outcome = applyWorker(state, workerFromEmployee(employee, config, change.at), policy, now);
          } catch (err) {
            records.inc({ outcome: 'malformed' });
            ctx.logger.warn(
              { employee: change.employeeId, reason: (err as Error).message },
              'skipped an employee',
            );
            continue;
          }
        }
        records.inc({ outcome: outcome.events.length > 0 ? 'mapped' : 'ignored' });
        if (outcome.ignored)
          ctx.logger.debug({ employee: change.employeeId, reason: outcome.ignored }, 'no event');
        events.push(...outcome.events);
      }
      finish?.(state);
      const due = notHeld(events, state);
      await commit(state, due);
      return due.length;
    });
  }

  async function poll(signal: AbortSignal): Promise<void> {
    const now = ctx.clock.now();
    const stored = await loadState();
    const since = stored.since ?? new Date(now.getTime() - config.initial_lookback).toISOString();
    const { latest, changes } = await api().changedSince(since, signal);
    let emittedCount = 0;
    for (let i = 0; i < changes.length || i === 0; i += POLL_BATCH) {
      const batch = changes.slice(i, i + POLL_BATCH);
      const last = i + POLL_BATCH >= changes.length;
      const resolved = await resolve(batch, signal);
      emittedCount += await apply(
        resolved,
        last ? (state) => void (state.since = latest ?? now.toISOString()) : undefined,
      );
    }
    if (changes.length > 0) {
      ctx.logger.info({ changed: changes.length, events: emittedCount }, 'BambooHR changes processed');
    }
    ctx.status.success();
  }

  async function release(): Promise<void> {
    await serial(async () => {
      const now = ctx.clock.now();
      const state = await loadState();
      const next = nextDue(state);
      if (next === undefined || new Date(next).getTime() > now.getTime()) return;
      const events = releaseDue(state, policy, now);
      await commit(state, events);
      ctx.logger.info({ events: events.length }, 'released held terminations that took effect');
    });
  }

  function report(err: unknown): never {
    if (err instanceof PermanentError) ctx.status.set('permanent_error', err.message);
    else if (err instanceof RetryableError) ctx.status.set('recoverable_error', err.message);
    throw err;
  }

  function refuse(status: number, outcome: string, error: string, message: string): InboundResponse {
    webhooks.inc({ outcome });
    return { status, body: { error, message } };
  }

  function verify(req: InboundRequest): string | undefined {
    const signature = req.headers['x-bamboohr-signature']?.trim();
    const timestamp = req.headers['x-bamboohr-timestamp']?.trim();
    if (!signature || !timestamp) return 'X-BambooHR-Signature and X-BambooHR-Timestamp are required';
    const at = parseTimestamp(timestamp);
    if (at === undefined) return 'X-BambooHR-Timestamp is not a time';
    if (Math.abs(ctx.clock.now().getTime() - at) > config.replay_window) {
      return 'X-BambooHR-Timestamp is outside the replay window';
    }
    const presented = digest(decodeSignature(signature));
    let ok = false;
    for (const key of keys) {
      const expected = createHmac('sha256', key).update(req.rawBody).update(timestamp, 'utf8').digest();
      ok = timingSafeEqual(presented, digest(expected)) || ok;
    }
    return ok ? undefined : 'the signature does not match';
  }

  return {
    async check(signal) {
      try {
        await api().ping(signal);
        return { ok: true, message: `BambooHR API reachable for ${config.company_domain}` };
      } catch (err) {
        return {
          ok: false,
          message: (err as Error).message,
          retryable: err instanceof RetryableError,
        };
      }
    },
    async start() {
      stopped = false;
      if (config.mode !== 'webhook') {
        tasks.push(
          ctx.scheduler.schedule(
            'poll',
            {
              everyMs: config.poll_interval,
              runOnStart: true,
              jitterMs: Math.min(30_000, config.poll_interval / 10),
            },
            (signal) => poll(signal).catch(report),
          ),
        );
      }
      tasks.push(
        ctx.scheduler.schedule('release', { everyMs: config.release_interval, runOnStart: true }, () =>
          release().catch(report),
        ),
      );
    },
    async stop(deadlineMs) {
      stopped = true;
      for (const task of tasks.splice(0)) task.stop();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise((r) => (timer = setTimeout(r, Math.max(0, deadlineMs))))]);
      clearTimeout(timer);
    },
    async handleWebhook(req) {
      if (config.mode === 'poll') {
        return refuse(404, 'disabled', 'not_found', 'this instance polls BambooHR; webhooks are not enabled');
      }
      if (stopped) return { status: 503, headers: { 'retry-after': '5' }, body: { error: 'unavailable' } };
      const problem = verify(req);
      if (problem) return refuse(401, 'unauthenticated', 'unauthorized', problem);
      let changes: EmployeeChange[];
      try {
        const contentType = req.headers['content-type'] ?? '';
        const body = /x-www-form-urlencoded/i.test(contentType)
          ? formToWebhook(req.rawBody.toString('utf8'))
          : req.body;
        changes = changesOfWebhook(body);
      } catch (err) {
        return refuse(400, 'invalid', 'invalid_request', (err as Error).message);
      }
      let resolved: Resolved[];
      try {
        resolved = await resolve(changes);
      } catch (err) {
        if (err instanceof PermanentError) {
          ctx.status.set(err.authFailure ? 'permanent_error' : 'recoverable_error', err.message);
          return refuse(
            502,
            'upstream_error',
            'upstream_error',
            `could not read the employee from BambooHR: ${err.message}`,
          );
        }
        webhooks.inc({ outcome: 'retry' });
        throw err;
      }
      try {
        const count = await apply(resolved);
        webhooks.inc({ outcome: 'accepted' });
        ctx.status.success();
        return { status: 200, body: { received: changes.length, events: count } };
      } catch (err) {
        webhooks.inc({ outcome: 'retry' });
        throw err;
      }
    },
  };
}

/** X-BambooHR-Timestamp: Unix seconds (or milliseconds), or an ISO 8601 time. */
export function parseTimestamp(value: string): number | undefined {
  if (/^\d{9,11}$/.test(value)) return Number(value) * 1000;
  if (/^\d{12,14}$/.test(value)) return Number(value);
  const t = Date.parse(value.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isNaN(t) ? undefined : t;
}

/** Hex (as BambooHR sends it) or base64; whatever it is, it is compared in constant time. */
function decodeSignature(value: string): Buffer {
  const v = value.replace(/^sha256=/i, '');
  if (/^[0-9a-f]{64}$/i.test(v)) return Buffer.from(v, 'hex');
  return Buffer.from(v, 'base64');
}

function digest(value: Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}
