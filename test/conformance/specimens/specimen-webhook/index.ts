import {
  defineConnector,
  PermanentError,
  secret,
  z,
  type EventDraft,
  type MappingResult,
} from '../../../../core/plugin-api/index.ts';

/** Faults the kit must catch, each one a realistic mistake in a webhook connector. */
export type WebhookFault =
  'plain-error-on-malformed' | 'no-auth' | 'presence-only' | 'invalid-subject' | 'emit-failure-as-400';

const alertSchema = z.looseObject({
  id: z.string().min(1),
  kind: z.string().min(1),
  email: z.email(),
  at: z.iso.datetime(),
});

function mapAlert(record: unknown, plainError: boolean, invalidSubject = false): MappingResult {
  const parsed = alertSchema.safeParse(record);
  if (!parsed.success) {
    const message = `malformed alert: ${z.prettifyError(parsed.error)}`;
    // The mistake: an Error the bridge cannot classify, so the record looks worth retrying.
    throw plainError ? new RangeError(message) : new PermanentError(message);
  }
  const alert = parsed.data;
  if (alert.kind !== 'session_revoked')
    return { events: [], ignored: `alert kind ${alert.kind} is not a security signal` };
  const event: EventDraft = {
    type: 'caep.session-revoked',
    // The mistake: an id where the address belongs, which the event catalog refuses.
    subject: { format: 'email', email: invalidSubject ? alert.id : alert.email },
    sourceRecordId: alert.id,
    occurredAt: alert.at,
  };
  return { events: [event] };
}

const configSchema = z.strictObject({
  token: secret('Bearer token the sender presents.'),
});

/** A small webhook connector; `faults` seeds the mistakes the conformance kit must report. */
export function specimenWebhook(...faults: WebhookFault[]) {
  const has = (fault: WebhookFault) => faults.includes(fault);
  return defineConnector({
    manifest: {
      id: 'specimen-webhook',
      kind: 'inbound',
      version: '1.0.0',
      stability: 'beta',
      displayName: 'Specimen webhook',
      description: 'Takes alerts posted to it; used to prove the conformance kit catches faults.',
      emits: ['caep.session-revoked'],
      capabilities: { webhook: true },
    },
    configSchema,
    examples: [{ title: 'Token from the environment', config: { token: '${env:T}' } }],
    map: (record) => mapAlert(record, has('plain-error-on-malformed'), has('invalid-subject')),
    create(ctx, config) {
      return {
        async start() {},
        async stop() {},
        async handleWebhook(req) {
          const authorization = req.headers['authorization'];
          // The mistake of presence-only: any bearer token is taken, the right one or not.
          const authorized = has('presence-only')
            ? typeof authorization === 'string' && authorization.startsWith('Bearer ')
            : authorization === `Bearer ${config.token.reveal()}`;
          if (!has('no-auth') && !authorized) {
            return { status: 401, body: { error: 'invalid_token' } };
          }
          const { events } = mapAlert(req.body, has('plain-error-on-malformed'), has('invalid-subject'));
          if (has('emit-failure-as-400')) {
            // The mistake: a failed persist answered as a bad request, which the sender never retries.
            try {
              const result = await ctx.emit(events);
              return { status: 202, body: { accepted: result.accepted.length } };
            } catch (err) {
              throw new PermanentError(`could not take the alert: ${(err as Error).message}`);
            }
          }
          const result = await ctx.emit(events);
          return { status: 202, body: { accepted: result.accepted.length } };
        },
      };
    },
  });
}
