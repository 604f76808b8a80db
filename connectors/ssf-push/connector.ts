import type { ConnectorContext, HttpAuth, OutboundConnector } from '../../core/plugin-api/index.ts';
import { counted } from '../_shared/outbound-common.ts';
import { oauthAuth } from '../_shared/outbound-config.ts';
import { pushSet } from '../_shared/outbound-push.ts';
import type { SsfPushConfig } from './config.ts';

function authOf(config: SsfPushConfig): HttpAuth | undefined {
  if (config.authorization_header) {
    return { type: 'header', name: 'Authorization', value: config.authorization_header };
  }
  return config.oauth ? oauthAuth(config.oauth) : undefined;
}

/**
 * Pushes every SET to one receiver (RFC 8935). Without authorization configured no
 * Authorization header is sent at all, as SSF 1.0 §6.1.1 asks.
 */
export function createSsfPush(ctx: ConnectorContext, config: SsfPushConfig): OutboundConnector {
  const auth = authOf(config);
  const client = ctx.http.create({ timeoutMs: config.request_timeout, ...(auth ? { auth } : {}) });
  const pushes = ctx.metrics.counter('ssf_push_sets_total', 'SETs pushed to the receiver, by outcome', [
    'outcome',
  ]);
  return {
    target: {
      audience: config.audience,
      profile: config.profile,
      ...(config.profile_options ? { profileOptions: config.profile_options } : {}),
    },
    async start() {},
    async stop() {},
    deliver: (set, signal) =>
      counted(pushes, {}, () => pushSet(client, config.endpoint_url, set, { signal })),
  };
}
