import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  defineConnector,
  PermanentError,
  secret,
  z,
  type EventDraft,
  type InboundRequest,
  type MappingResult,
} from '../../../../core/plugin-api/index.ts';

/** Faults the kit must catch, each one a realistic mistake in a webhook connector. */
export type WebhookFault =
  | 'plain-error-on-malformed'
  | 'no-auth'
  | 'presence-only'
  | 'invalid-subject'
  | 'emit-failure-as-400'
  // A refusal tells the caller which token it expected, in a response header.
  | 'secret-in-response-header'
  // With signing_secret, the HMAC is checked over JSON.stringify(req.body), not the bytes received.
  | 'signs-parsed-body'
  // The alert id is read before the body is checked: an empty or null body throws a TypeError (500).
  | 'reads-body-unchecked';

/** The header a signing sender puts the hex HMAC-SHA256 of the body in. */
export const SIGNATURE_HEADER = 'x-signature';

export function signature(secret: string, body: Buffer | string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

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
  signing_secret: secret(
    `Shared secret a signing sender computes the HMAC-SHA256 of each body with (hex, in ${SIGNATURE_HEADER}); set, it replaces the bearer token.`,
  ).optional(),
});

/** Whether the request carries the HMAC of its body; `overParsed` is the mistake of signs-parsed-body. */
function signedWith(secret: string, req: InboundRequest, overParsed: boolean): boolean {
  const signed = overParsed ? (JSON.stringify(req.body) ?? '') : req.rawBody;
  const expected = Buffer.from(signature(secret, signed));
  const given = Buffer.from(req.headers[SIGNATURE_HEADER] ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

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
          const authorized = config.signing_secret
            ? signedWith(config.signing_secret.reveal(), req, has('signs-parsed-body'))
            : has('presence-only')
              ? typeof authorization === 'string' && authorization.startsWith('Bearer ')
              : authorization === `Bearer ${config.token.reveal()}`;
          if (!has('no-auth') && !authorized) {
            // The mistake of secret-in-response-header: the expected token, to whoever knocks.
            const headers = has('secret-in-response-header')
              ? { 'www-authenticate': `Bearer realm="alerts", expected="${config.token.reveal()}"` }
              : undefined;
            return { status: 401, body: { error: 'invalid_token' }, ...(headers ? { headers } : {}) };
          }
          // The mistake of reads-body-unchecked: a body that is not an object throws a TypeError.
          if (has('reads-body-unchecked')) ctx.logger.debug({ alert: (req.body as { id: string }).id });
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
