import {
  RetryableError,
  z,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import { createHibobClient, type HibobClient } from './client.ts';
import type { HibobConfig } from './config.ts';
import { hrCheckpoint, logBackfilled } from '../_shared/hr-checkpoint.ts';
import { emptyHrState, notHeld, unnamedFor, unnamedLeaver } from '../_shared/hr-leaver.ts';
import { hrWebhookReplies, signatureMatches, signingKeys, unavailable } from '../_shared/hr-webhook.ts';
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
 * fetches the employee through the Public API (Bob's advice: do not trust payloads) unless
 * configured webhook_only, and commits the resulting events with the updated checkpoint before
 * answering 200.
 */
export function createHibob(ctx: InboundContext<HibobState>, config: HibobConfig): InboundConnector {
  const policy = policyOf(config);
  const secrets = signingKeys(config.webhook_secret, config.previous_webhook_secret);
  const webhook = hrWebhookReplies(ctx, 'hibob');
  const employees = ctx.metrics.counter('hibob_employees_total', 'Employee changes processed, by outcome', [
    'outcome',
  ]);
  const checkpoint = hrCheckpoint(ctx, {
    metricPrefix: 'hibob',
    source: 'HiBob',
    code: 'SSF_ERR_HIBOB_STATE',
    schema: stateSchema,
    empty: emptyHrState,
  });
  const tasks: ScheduledTask[] = [];
  let client: HibobClient | undefined;
  let stopped = false;

  function api(): HibobClient {
    client ??= createHibobClient(ctx as InboundContext<unknown>, config);
    return client;
  }

  /** Bob signs with the configured hash; a hex signature of either hash length is read too. */
  function signatureOk(req: InboundRequest): boolean {
    const header = req.headers['bob-signature']?.trim();
    if (!header) return false;
    return signatureMatches(header, secrets, config.signature_algorithm, [req.rawBody], ['sha256', 'sha512']);
  }

  /**
   * A leaver that no subject can be made for (subject_format email, and no email known: Bob
   * answered 404 to a service user that cannot see inactive employees, or the record has none;
   * or the only one known belongs to another active employee now, `owner`). Answered 503, not
   * 200, so that Bob delivers it again once the cause is put right, instead of the leaver being
   * dropped; nothing is committed.
   */
  function leaverWithoutSubject(
    type: string,
    employeeId: string,
    found: boolean,
    owner: string | undefined,
  ): RetryableError {
    const missing = found
      ? 'the employee record in Bob has no usable work email'
      : `Bob answered no employee ${employeeId} (can the service user see inactive employees?)`;
    const cause =
      owner === undefined
        ? `${missing}, no earlier delivery gave an email`
        : `the only work email known for them belongs to active employee ${owner} now`;
    const message = `${type} for employee ${employeeId} is a leaver, but ${cause}, and subject_format is email: not sent; Bob is asked to deliver it again`;
    employees.inc({ outcome: 'no_email' });
    ctx.status.set('recoverable_error', message);
    ctx.logger.warn({ type, employee: employeeId }, message);
    return new RetryableError(message, { code: 'SSF_ERR_HIBOB_NO_SUBJECT', retryAfterMs: 60_000 });
  }

  return {
    async start() {
      stopped = false;
      tasks.push(checkpoint.scheduleRelease(policy, config.release_interval));
    },
    async stop(deadlineMs) {
      stopped = true;
      for (const task of tasks.splice(0)) task.stop();
      await checkpoint.settle(deadlineMs);
    },
    async handleWebhook(req) {
      if (stopped) return unavailable();
      if (!signatureOk(req)) {
        return webhook.refuse(
          401,
          'unauthenticated',
          'unauthorized',
          'Bob-Signature is missing or does not match',
        );
      }
      const parsed = envelopeSchema.safeParse(req.body);
      if (!parsed.success) {
        return webhook.refuse(
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
        return webhook.refuse(
          401,
          'stale',
          'unauthorized',
          'triggeredAt is outside the accepted window (a replay?)',
        );
      }
      if (!isEmployeeEvent(event.type)) {
        return webhook.reply(200, 'ignored', {
          received: 1,
          events: 0,
          ignored: `${event.type} is not about employment`,
        });
      }
      let employee: HibobEmployee | undefined;
      // webhook_only: the delivery is all there is (see applyDelivery).
      if (event.type !== 'employee.deleted' && config.employee_lookup === 'api') {
        try {
          employee = await api().getEmployee(String(event.data.employeeId).trim());
        } catch (err) {
          return webhook.lookupFailed(err, 'Bob');
        }
      }
      if (employee) {
        try {
          workerOf(event, employee, config);
        } catch (err) {
          ctx.status.set('recoverable_error', (err as Error).message);
          return webhook.refuse(
            502,
            'upstream_error',
            'upstream_error',
            `the employee record from Bob is unreadable: ${(err as Error).message}`,
          );
        }
      }
      const employeeId = String(event.data.employeeId).trim();
      return webhook.accept(1, () =>
        checkpoint.serial(async () => {
          const state = await checkpoint.load();
          const at = ctx.clock.now();
          const outcome = applyEvent(state, event, employee, config, at);
          if (unnamedLeaver(outcome))
            throw leaverWithoutSubject(event.type, employeeId, employee !== undefined, unnamedFor(outcome));
          if (outcome.ignored) ctx.logger.debug({ type: event.type, reason: outcome.ignored }, 'no event');
          const due = notHeld(outcome.events, state);
          await checkpoint.commit(state, due);
          if (outcome.backfilled)
            logBackfilled(ctx, [employeeId], config.backfill_window, { type: event.type });
          employees.inc({
            outcome: outcome.events.length > 0 ? 'mapped' : outcome.backfilled ? 'backfilled' : 'ignored',
          });
          return due.length;
        }),
      );
    },
  };
}
