import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  PermanentError,
  RetryableError,
  z,
  type EventDraft,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type InboundResponse,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import { createHibobClient, type HibobClient } from './client.ts';
import type { HibobConfig } from './config.ts';
import { emptyHrState, nextDue, notHeld, releaseDue } from '../_shared/hr-leaver.ts';
import {
  applyEvent,
  envelopeSchema,
  isEmployeeEvent,
  policyOf,
  stateSchema,
  type HibobEmployee,
  type HibobEnvelope,
  type HibobState,
  workerOf,
} from './mapping.ts';

/**
 * HiBob webhooks v2: verifies Bob-Signature over the raw body, refuses replays by triggeredAt,
 * fetches the employee through the Public API (Bob's advice: do not trust payloads), and commits
 * the resulting events with the updated checkpoint before answering 200.
 */
export function createHibob(ctx: InboundContext<HibobState>, config: HibobConfig): InboundConnector {
  const policy = policyOf(config);
  const secrets = [config.webhook_secret, config.previous_webhook_secret]
    .filter((s) => s !== undefined)
    .map((s) => Buffer.from(s.reveal(), 'utf8'));
  const webhooks = ctx.metrics.counter('hibob_webhooks_total', 'Webhook requests by outcome', ['outcome']);
  const employees = ctx.metrics.counter('hibob_employees_total', 'Employee changes processed, by outcome', [
    'outcome',
  ]);
  const emitted = ctx.metrics.counter('hibob_events_total', 'Events emitted, by type', ['type']);
  const tasks: ScheduledTask[] = [];
  let client: HibobClient | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;

  function api(): HibobClient {
    client ??= createHibobClient(ctx as InboundContext<unknown>, config);
    return client;
  }

  function serial<T>(work: () => Promise<T>): Promise<T> {
    const next = running.then(work, work);
    running = next.catch(() => undefined);
    return next;
  }

  async function loadState(): Promise<HibobState> {
    const raw = await ctx.checkpoints.get();
    if (raw === undefined) return emptyHrState();
    const parsed = stateSchema.safeParse(raw);
    if (!parsed.success) {
      throw new PermanentError('the stored HiBob checkpoint is not readable; reset it to start over', {
        code: 'SSF_ERR_HIBOB_STATE',
      });
    }
    return parsed.data;
  }

  async function commit(state: HibobState, events: EventDraft[]): Promise<void> {
    await ctx.emit(events, { checkpoint: { value: state } });
    for (const e of events) emitted.inc({ type: e.type });
  }

  function refuse(status: number, outcome: string, error: string, message: string): InboundResponse {
    webhooks.inc({ outcome });
    return { status, body: { error, message } };
  }

  function signatureOk(req: InboundRequest): boolean {
    const header = req.headers['bob-signature']?.trim();
    if (!header) return false;
    const presented = digest(decodeSignature(header));
    let ok = false;
    for (const secret of secrets) {
      const expected = createHmac(config.signature_algorithm, secret).update(req.rawBody).digest();
      ok = timingSafeEqual(presented, digest(expected)) || ok;
    }
    return ok;
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

  return {
    async start() {
      stopped = false;
      tasks.push(
        ctx.scheduler.schedule('release', { everyMs: config.release_interval, runOnStart: true }, () =>
          release().catch((err: unknown) => {
            if (err instanceof PermanentError) ctx.status.set('permanent_error', err.message);
            else if (err instanceof RetryableError) ctx.status.set('recoverable_error', err.message);
            throw err;
          }),
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
      if (stopped) return { status: 503, headers: { 'retry-after': '5' }, body: { error: 'unavailable' } };
      if (!signatureOk(req)) {
        return refuse(401, 'unauthenticated', 'unauthorized', 'Bob-Signature is missing or does not match');
      }
      const parsed = envelopeSchema.safeParse(req.body);
      if (!parsed.success) {
        return refuse(
          400,
          'invalid',
          'invalid_request',
          `not a Bob webhook v2 delivery: ${z.prettifyError(parsed.error)}`,
        );
      }
      const event: HibobEnvelope = parsed.data;
      const triggered = Date.parse(event.triggeredAt);
      const now = ctx.clock.now().getTime();
      if (Number.isNaN(triggered) || Math.abs(now - triggered) > config.max_event_age) {
        return refuse(401, 'stale', 'unauthorized', 'triggeredAt is outside the accepted window (a replay?)');
      }
      if (!isEmployeeEvent(event.type)) {
        webhooks.inc({ outcome: 'ignored' });
        return {
          status: 200,
          body: { received: 1, events: 0, ignored: `${event.type} is not about employment` },
        };
      }
      let employee: HibobEmployee | undefined;
      if (event.type !== 'employee.deleted') {
        try {
          employee = await api().getEmployee(String(event.data.employeeId).trim());
        } catch (err) {
          if (err instanceof PermanentError) {
            ctx.status.set(err.authFailure ? 'permanent_error' : 'recoverable_error', err.message);
            return refuse(
              502,
              'upstream_error',
              'upstream_error',
              `could not read the employee from Bob: ${err.message}`,
            );
          }
          webhooks.inc({ outcome: 'retry' });
          throw err;
        }
      }
      if (employee) {
        try {
          workerOf(event, employee, config);
        } catch (err) {
          ctx.status.set('recoverable_error', (err as Error).message);
          return refuse(
            502,
            'upstream_error',
            'upstream_error',
            `the employee record from Bob is unreadable: ${(err as Error).message}`,
          );
        }
      }
      try {
        const count = await serial(async () => {
          const state = await loadState();
          const at = ctx.clock.now();
          const outcome = applyEvent(state, event, employee, config, at);
          if (outcome.ignored) ctx.logger.debug({ type: event.type, reason: outcome.ignored }, 'no event');
          const due = notHeld(outcome.events, state);
          await commit(state, due);
          employees.inc({ outcome: outcome.events.length > 0 ? 'mapped' : 'ignored' });
          return due.length;
        });
        webhooks.inc({ outcome: 'accepted' });
        ctx.status.success();
        return { status: 200, body: { received: 1, events: count } };
      } catch (err) {
        webhooks.inc({ outcome: 'retry' });
        throw err;
      }
    },
  };
}

/** Base64 as Bob sends it (hex tolerated); compared in constant time either way. */
function decodeSignature(value: string): Buffer {
  const v = value.replace(/^sha(256|512)=/i, '');
  if (/^[0-9a-f]+$/i.test(v) && (v.length === 64 || v.length === 128)) return Buffer.from(v, 'hex');
  return Buffer.from(v, 'base64');
}

function digest(value: Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}
