import {
  defineConnector,
  PermanentError,
  RetryableError,
  secret,
  z,
  type SignedSet,
} from '../../../../core/plugin-api/index.ts';

/** Faults the kit must catch in an outbound connector. */
export type PusherFault = 'no-timeout' | 'logged-secret' | 'ignores-signal' | 'secret-in-check';

const configSchema = z.strictObject({
  endpoint: z.url().meta({ description: 'Where SETs are posted.' }),
  api_token: secret('Bearer token the receiver expects.'),
});

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
      accepts: ['caep.session-revoked'],
      capabilities: { check: true },
    },
    configSchema,
    examples: [
      { title: 'Receiver', config: { endpoint: 'https://receiver.example/events', api_token: '${env:T}' } },
    ],
    create(ctx, config) {
      const client = ctx.http.create({ auth: { type: 'bearer', token: config.api_token } });
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
        async start() {},
        async stop() {},
        async deliver(set, signal) {
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
