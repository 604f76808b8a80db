import type { ConnectorContext, OutboundConnector } from '../../core/plugin-api/index.ts';
import {
  ACCOUNT_DISABLED,
  SESSION_REVOKED,
  TtlCache,
  counted,
  refuse,
  shortName,
  subjectFormats,
  userEmail,
} from '../_shared/outbound-common.ts';
import { SlackClient, isUserNotFound } from './client.ts';
import type { SlackConfig } from './config.ts';

const NAME = 'slack';
const TRIGGER_OF: Record<string, SlackConfig['trigger_on'][number]> = {
  [SESSION_REVOKED]: 'session-revoked',
  [ACCOUNT_DISABLED]: 'account-disabled',
};

/** Slack Enterprise Grid: resets a user's Slack sessions, finding the user by email. */
export function createSlack(ctx: ConnectorContext, config: SlackConfig): OutboundConnector {
  const http = ctx.http.create({
    baseURL: config.api_url,
    timeoutMs: config.request_timeout,
    auth: { type: 'bearer', token: config.token },
  });
  const slack = new SlackClient(http);
  const ids = new TtlCache<string>(config.user_cache_ttl, () => ctx.clock.now().getTime());
  const resets = ctx.metrics.counter('slack_session_resets_total', 'Slack session resets, by outcome', [
    'outcome',
  ]);

  return {
    target: { audience: 'urn:ssf-bridge:slack', profile: 'ssf-1.0' },
    async start() {},
    async stop() {},
    async deliver(set, signal) {
      const trigger = TRIGGER_OF[set.eventType];
      if (!trigger || !config.trigger_on.includes(trigger)) {
        throw refuse(
          NAME,
          `${shortName(set.eventType)} does not reset Slack sessions (trigger_on: ${config.trigger_on.join(', ')})`,
        );
      }
      const email = userEmail(set.subject);
      if (!email)
        throw refuse(NAME, `Slack users are found by email; the subject is ${subjectFormats(set.subject)}`);
      return counted(resets, {}, async () => {
        const key = email.toLowerCase();
        const reset = async (id: string) => {
          const status = await slack.resetSessions(id, config.sessions, signal);
          return { status, detail: `Slack sessions of ${id} reset (${config.sessions})` };
        };
        const cached = ids.get(key);
        if (cached !== undefined) {
          try {
            return await reset(cached);
          } catch (err) {
            // The cached id may belong to an account since deleted, the email now another's:
            // look the email up again at once, and act on the account that has it now.
            if (!isUserNotFound(err)) throw err;
            ids.delete(key);
          }
        }
        const id = await slack.userIdFor(email, signal);
        if (!id) throw refuse(NAME, `no Slack user has the email ${email}`);
        // Cached when looked up only, so the entry expires user_cache_ttl after the lookup.
        ids.set(key, id);
        try {
          return await reset(id);
        } catch (err) {
          if (isUserNotFound(err)) ids.delete(key);
          throw err;
        }
      });
    },
  };
}
