import {
  PermanentError,
  RetryableError,
  type EventDraft,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import { createBambooHrClient, type BambooHrClient } from './client.ts';
import type { BambooHrConfig } from './config.ts';
import {
  CHANGE_WINDOW_OVERLAP_MS,
  hrCheckpoint,
  logBackfilled,
  reportFailures,
  unnamedLeavers,
} from '../_shared/hr-checkpoint.ts';
import { applyDeletion, applyWorker, notHeld, unnamedFor, unnamedLeaver } from '../_shared/hr-leaver.ts';
import { hrWebhookReplies, signatureMatches, signingKeys, unavailable } from '../_shared/hr-webhook.ts';
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
  /** Why the API's answer about the employee could not be read (polling only). */
  unreadable?: string | undefined;
}

/** Answers about one employee that say nothing about the others: a 200 that is not a record. */
const UNREADABLE_RECORD = new Set(['SSF_ERR_BAMBOOHR_RESPONSE', 'SSF_ERR_HTTP_BAD_BODY']);

/**
 * BambooHR: event-based webhooks (HMAC-verified, then the employee is fetched) and/or polling of
 * /employees/changed. Every change is applied to the checkpoint and committed with its events.
 */
export function createBambooHr(ctx: InboundContext<BambooHrState>, config: BambooHrConfig): InboundConnector {
  const policy = policyOf(config);
  const keys = signingKeys(config.webhook_private_key, config.previous_webhook_private_key);
  const webhook = hrWebhookReplies(ctx, 'bamboohr');
  const records = ctx.metrics.counter('bamboohr_employees_total', 'Employee changes processed, by outcome', [
    'outcome',
  ]);
  const checkpoint = hrCheckpoint(ctx, {
    metricPrefix: 'bamboohr',
    source: 'BambooHR',
    code: 'SSF_ERR_BAMBOOHR_STATE',
    schema: stateSchema,
    empty: emptyState,
  });
  const tasks: ScheduledTask[] = [];
  let client: BambooHrClient | undefined;
  let stopped = false;

  function api(): BambooHrClient {
    client ??= createBambooHrClient(ctx as InboundContext<unknown>, config);
    return client;
  }

  /**
   * Fetches what the changes name. Called inside checkpoint.serial, after the state is loaded:
   * each employee is read and applied in turn with all other work on the state, so a read is
   * never applied after a newer one of the same employee (a poll's read of an employee still
   * active, answered after a webhook's read of the termination, would re-enable the leaver), and
   * work whose commit meets a state another instance committed meanwhile reads again. With
   * `skipUnreadable` (polling), an employee whose record the API answers unreadably is marked so
   * and skipped: a poll cannot leave one record for later, and failing on it would stop every
   * poll after.
   */
  async function resolve(
    changes: EmployeeChange[],
    signal?: AbortSignal,
    skipUnreadable = false,
  ): Promise<Resolved[]> {
    const out: Resolved[] = [];
    // One read per employee, however often a batch names them.
    const read = new Map<string, Omit<Resolved, 'change'>>();
    for (const change of changes) {
      if (change.action === 'deleted') {
        out.push({ change });
        continue;
      }
      let found = read.get(change.employeeId);
      if (!found) {
        try {
          found = { employee: await api().getEmployee(change.employeeId, signal) };
        } catch (err) {
          if (!skipUnreadable || !(err instanceof PermanentError) || !UNREADABLE_RECORD.has(err.code))
            throw err;
          found = { unreadable: err.message };
        }
        read.set(change.employeeId, found);
      }
      out.push({ change, ...found });
    }
    return out;
  }

  /**
   * A leaver a webhook names that no subject can be made for (subject_format email, and no usable
   * work email, or only one another active employee has now). Answered 503, not 200, so that
   * BambooHR delivers it again once the cause is put right, instead of the leaver being
   * dropped; nothing is committed.
   */
  function leaverWithoutSubject(employeeId: string, owner: string | undefined): RetryableError {
    const cause =
      owner === undefined
        ? 'the employee record in BambooHR has no usable work email'
        : `the only work email known for them belongs to active employee ${owner} now`;
    const message = `employee ${employeeId} is a leaver, but ${cause}, and subject_format is email: not sent; BambooHR is asked to deliver it again`;
    records.inc({ outcome: 'no_email' });
    ctx.status.set('recoverable_error', message);
    ctx.logger.warn({ employee: employeeId }, message);
    return new RetryableError(message, { code: 'SSF_ERR_BAMBOOHR_NO_SUBJECT', retryAfterMs: 60_000 });
  }

  interface Applied {
    events: EventDraft[];
    /** A description of each unreadable employee skipped. */
    malformed: string[];
    /** The ids of old leavers the backfill window recorded without events. */
    backfilled: string[];
  }

  /**
   * Applies resolved changes to `state` (in place) and returns their events. An unreadable
   * employee is skipped and described. A leaver no subject can be made for fails a webhook (see
   * leaverWithoutSubject); a poll keeps it in `state.unnamed`, to be read again by the next
   * polls, since /employees/changed will not name it again.
   *
   * `news`: the changes come from /employees/changed after the first poll: a termination they
   * show is news however old its date, though the employee was never seen before.
   */
  function applyResolved(
    state: BambooHrState,
    resolved: Resolved[],
    options: { news?: boolean; webhook?: boolean } = {},
  ): Applied {
    const { news = false, webhook: fromWebhook = false } = options;
    const now = ctx.clock.now();
    const applied: Applied = { events: [], malformed: [], backfilled: [] };
    /** The employee's latest read settled it: no longer kept for want of a subject. */
    const settled = (id: string) => {
      if (state.unnamed?.[id] === undefined) return;
      delete state.unnamed[id];
      if (Object.keys(state.unnamed).length === 0) delete state.unnamed;
    };
    for (const { change, employee, unreadable } of resolved) {
      let outcome;
      if (unreadable !== undefined) {
        records.inc({ outcome: 'malformed' });
        applied.malformed.push(`employee ${change.employeeId}: ${unreadable}`);
        ctx.logger.warn({ employee: change.employeeId, reason: unreadable }, 'skipped an employee');
        continue;
      } else if (change.action === 'deleted') {
        outcome = applyDeletion(state, change.employeeId, undefined, policy, change.at, now);
      } else if (!employee) {
        records.inc({ outcome: 'vanished' });
        settled(change.employeeId);
        ctx.logger.info({ employee: change.employeeId }, 'employee no longer exists in BambooHR; skipped');
        continue;
      } else {
        try {
          const worker = workerFromEmployee(employee, config, change.at, change.announced || news);
          outcome = applyWorker(state, worker, policy, now);
        } catch (err) {
          records.inc({ outcome: 'malformed' });
          applied.malformed.push(`employee ${change.employeeId}: ${(err as Error).message}`);
          ctx.logger.warn(
            { employee: change.employeeId, reason: (err as Error).message },
            'skipped an employee',
          );
          continue;
        }
      }
      if (unnamedLeaver(outcome)) {
        if (fromWebhook) throw leaverWithoutSubject(change.employeeId, unnamedFor(outcome));
        records.inc({ outcome: 'no_email' });
        (state.unnamed ??= {})[change.employeeId] ??= change.at ?? now.toISOString();
        continue;
      }
      settled(change.employeeId);
      records.inc({ outcome: outcome.events.length > 0 ? 'mapped' : 'ignored' });
      if (outcome.ignored)
        ctx.logger.debug({ employee: change.employeeId, reason: outcome.ignored }, 'no event');
      if (outcome.backfilled) applied.backfilled.push(change.employeeId);
      applied.events.push(...outcome.events);
    }
    return applied;
  }

  async function poll(signal: AbortSignal): Promise<void> {
    const now = ctx.clock.now();
    const stored = await checkpoint.load();
    // No watermark yet: the first poll, whose old leavers the backfill window keeps quiet. Every
    // poll after it reads what changed, so a termination it brings up is news.
    const firstRead = stored.since === undefined;
    const since = stored.since ?? new Date(now.getTime() - config.initial_lookback).toISOString();
    const { latest, changes } = await api().changedSince(since, signal);
    // Without BambooHR's `latest`, the next poll starts a little before this one did by the
    // bridge's clock: a change BambooHR dates just before it is read, not lost.
    const next = latest ?? new Date(now.getTime() - CHANGE_WINDOW_OVERLAP_MS).toISOString();
    // Leavers earlier polls could not name: the watermark has moved past them, so they are read
    // again, each poll, until they can be (or are read otherwise).
    const named = new Set(changes.map((c) => c.employeeId));
    const kept = Object.entries(stored.unnamed ?? {})
      .filter(([id]) => !named.has(id))
      .map(([employeeId, at]): EmployeeChange => ({ employeeId, action: 'updated', at }));
    const all = [...changes, ...kept];
    let emittedCount = 0;
    const malformed: string[] = [];
    const backfilled: string[] = [];
    let unnamed: string[] = [];
    for (let i = 0; i < all.length || i === 0; i += POLL_BATCH) {
      const batch = all.slice(i, i + POLL_BATCH);
      const last = i + POLL_BATCH >= all.length;
      const applied = await checkpoint.serial(async () => {
        const state = await checkpoint.load();
        const resolved = await resolve(batch, signal, true);
        const result = applyResolved(state, resolved, { news: !firstRead });
        if (last) state.since = next;
        const due = notHeld(result.events, state);
        await checkpoint.commit(state, due);
        unnamed = Object.keys(state.unnamed ?? {});
        return { ...result, events: due };
      });
      emittedCount += applied.events.length;
      malformed.push(...applied.malformed);
      backfilled.push(...applied.backfilled);
    }
    if (changes.length > 0) {
      ctx.logger.info({ changed: changes.length, events: emittedCount }, 'BambooHR changes processed');
    }
    logBackfilled(ctx, backfilled, config.backfill_window, { first_read: firstRead });
    // A poll cannot ask BambooHR to send a record again: an unreadable one stays on the
    // instance's status (and in the log) until a poll reads every record it is given, and a
    // leaver that cannot be named until it can be.
    const problems: string[] = [];
    if (malformed.length > 0) {
      problems.push(
        `skipped ${malformed.length} unreadable employee record(s): ${malformed.slice(0, 3).join('; ')}`,
      );
    }
    const notSent = unnamedLeavers(
      ctx,
      unnamed,
      'each poll reads them again until they can be sent (give them a work email of their own in BambooHR, or set subject_format: aliases)',
    );
    if (notSent) problems.push(notSent);
    if (problems.length > 0) ctx.status.set('recoverable_error', problems.join('; '));
    else ctx.status.success();
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
    const ok = signatureMatches(signature, keys, 'sha256', [req.rawBody, timestamp]);
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
            (signal) => poll(signal).catch(reportFailures(ctx)),
          ),
        );
      }
      tasks.push(checkpoint.scheduleRelease(policy, config.release_interval));
    },
    async stop(deadlineMs) {
      stopped = true;
      for (const task of tasks.splice(0)) task.stop();
      await checkpoint.settle(deadlineMs);
    },
    async handleWebhook(req) {
      if (config.mode === 'poll') {
        return webhook.refuse(
          404,
          'disabled',
          'not_found',
          'this instance polls BambooHR; webhooks are not enabled',
        );
      }
      if (stopped) return unavailable();
      const problem = verify(req);
      if (problem) return webhook.refuse(401, 'unauthenticated', 'unauthorized', problem);
      let changes: EmployeeChange[];
      try {
        const contentType = req.headers['content-type'] ?? '';
        const body = /x-www-form-urlencoded/i.test(contentType)
          ? formToWebhook(req.rawBody.toString('utf8'))
          : req.body;
        changes = changesOfWebhook(body);
      } catch (err) {
        return webhook.refuse(400, 'invalid', 'invalid_request', (err as Error).message);
      }
      return webhook.accept(changes.length, () =>
        checkpoint.serial(async () => {
          const state = await checkpoint.load();
          let resolved: Resolved[];
          try {
            resolved = await resolve(changes);
          } catch (err) {
            // Anything else is rethrown by accept: BambooHR retries.
            if (err instanceof PermanentError) return webhook.lookupFailed(err, 'BambooHR');
            throw err;
          }
          // An unreadable record is answered 502 before anything is applied, so BambooHR retries
          // the delivery instead of taking a 200 for a change that was never applied.
          for (const { change, employee } of resolved) {
            if (!employee) continue;
            try {
              workerFromEmployee(employee, config, change.at);
            } catch (err) {
              const message = `employee ${change.employeeId} from BambooHR is unreadable: ${(err as Error).message}`;
              ctx.status.set('recoverable_error', message);
              return webhook.refuse(502, 'upstream_error', 'upstream_error', message);
            }
          }
          const applied = applyResolved(state, resolved, { webhook: true });
          const due = notHeld(applied.events, state);
          await checkpoint.commit(state, due);
          logBackfilled(ctx, applied.backfilled, config.backfill_window, { first_read: false });
          return due.length;
        }),
      );
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
