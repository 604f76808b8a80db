import {
  defineConnector,
  duration,
  PermanentError,
  RetryableError,
  secret,
  z,
  type SignedSet,
} from '../../../../core/plugin-api/index.ts';

/** Faults the kit must catch in an outbound connector. */
export type PusherFault =
  | 'no-timeout'
  | 'logged-secret'
  | 'ignores-signal'
  | 'secret-in-check'
  // The client is created without timeoutMs: request_timeout is read, then ignored.
  | 'ignores-request-timeout'
  // The extra headers (an authorization header among them) are logged at start.
  | 'logs-headers'
  // A type the manifest accepts is refused: PermanentError "does not act on".
  | 'refuses-second-type'
  // caep.credential-change is refused whatever push_credential_changes says.
  | 'switch-ignored';

const configSchema = z.strictObject({
  endpoint: z.url().meta({ description: 'Where SETs are posted.' }),
  api_token: secret('Bearer token the receiver expects.'),
  request_timeout: duration('Deadline of one request to the receiver.', { min: 100, max: 600_000 }).prefault(
    '30s',
  ),
  headers: z
    .record(z.string(), z.string())
    .optional()
    .meta({ description: 'Extra headers sent with every request.' }),
  push_credential_changes: z.boolean().default(false).meta({
    description: 'Push caep.credential-change events too; off, they are refused (dead-lettered).',
  }),
});

const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';

const ACCOUNT_DISABLED = 'https://schemas.openid.net/secevent/risc/event-type/account-disabled';

/** What the fetch-based variant does with an answer: the classes ctx.http would give. */
function classify(status: number, retryAfter: string | null): void {
  if (status >= 200 && status < 300) return;
  if (status === 401 || status === 403)
    throw new PermanentError(`refused credentials (${status})`, { authFailure: true });
  if (status === 429 || status >= 500) {
    const seconds = Number(retryAfter);
    throw new RetryableError(
      `receiver answered ${status}`,
      Number.isFinite(seconds) && retryAfter ? { retryAfterMs: seconds * 1000 } : {},
    );
  }
  throw new PermanentError(`receiver answered ${status}`);
}

/** A small push connector; `faults` seeds the mistakes the conformance kit must report. */
export function specimenPusher(...faults: PusherFault[]) {
  const has = (fault: PusherFault) => faults.includes(fault);
  return defineConnector({
    manifest: {
      id: 'specimen-pusher',
      kind: 'outbound',
      version: '1.0.0',
      stability: 'stable',
      displayName: 'Specimen pusher',
      description: 'Posts SETs to a receiver; used to prove the conformance kit catches faults.',
      accepts: ['caep.session-revoked', 'risc.account-disabled', 'caep.credential-change'],
      capabilities: { check: true },
    },
    configSchema,
    examples: [
      { title: 'Receiver', config: { endpoint: 'https://receiver.example/events', api_token: '${env:T}' } },
    ],
    create(ctx, config) {
      const client = ctx.http.create({
        auth: { type: 'bearer', token: config.api_token },
        ...(config.headers ? { headers: config.headers } : {}),
        // The mistake of ignores-request-timeout: the client keeps its default deadline.
        ...(has('ignores-request-timeout') ? {} : { timeoutMs: config.request_timeout }),
      });
      const pushed = ctx.metrics.counter('sets_pushed_total', 'SETs the receiver accepted');
      const post = async (set: SignedSet, signal: AbortSignal): Promise<number> => {
        if (has('no-timeout')) {
          const res = await fetch(config.endpoint, {
            method: 'POST',
            body: set.jwt,
            headers: { authorization: `Bearer ${config.api_token.reveal()}` },
            signal,
          });
          await res.arrayBuffer();
          classify(res.status, res.headers.get('retry-after'));
          return res.status;
        }
        const res = await client.post(config.endpoint, set.jwt, {
          headers: { 'content-type': 'application/secevent+jwt' },
          responseType: 'text',
          // The mistake of ignores-signal: the attempt runs on to its own deadline.
          ...(has('ignores-signal') ? {} : { signal }),
        });
        return res.status;
      };
      return {
        target: { audience: 'https://receiver.example' },
        async check(signal) {
          try {
            await client.get(config.endpoint, { responseType: 'text', signal });
            return { ok: true, message: `${config.endpoint} answers` };
          } catch (err) {
            // The mistake of secret-in-check: the credential in the message operators are shown.
            const token = has('secret-in-check') ? ` with token ${config.api_token.reveal()}` : '';
            return { ok: false, message: `${config.endpoint} refused${token}: ${(err as Error).message}` };
          }
        },
        async start() {
          // The mistake of logs-headers: the headers, credentials among them, in the log.
          if (has('logs-headers')) ctx.logger.info({ headers: config.headers }, 'pushing with extra headers');
        },
        async stop() {},
        async deliver(set, signal) {
          if (has('refuses-second-type') && set.eventType === ACCOUNT_DISABLED)
            throw new PermanentError(`this receiver does not act on ${set.eventType}`);
          // An operator's choice, named in the refusal (the mistake of switch-ignored: refused always).
          if (
            set.eventType === CREDENTIAL_CHANGE &&
            (!config.push_credential_changes || has('switch-ignored'))
          )
            throw new PermanentError('credential changes are not pushed: push_credential_changes is off');
          if (has('logged-secret'))
            ctx.logger.info(`posting ${set.jti} with token ${config.api_token.reveal()}`);
          const status = await post(set, signal);
          pushed.inc();
          return { status };
        },
      };
    },
  });
}
