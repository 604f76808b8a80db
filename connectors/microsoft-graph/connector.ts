import type { ConnectorContext, OutboundConnector, SignedSet } from '../../core/plugin-api/index.ts';
import {
  ACCOUNT_DISABLED,
  RISK_LEVEL_CHANGE,
  SESSION_REVOKED,
  TtlCache,
  counted,
  refuse,
  shortName,
  subjectFormats,
  userEmail,
} from '../_shared/outbound-common.ts';
import { GraphClient, isNotFound } from './client.ts';
import type { GraphConfig } from './config.ts';
import { Pacer } from './pacer.ts';
import { entraAuth } from '../_shared/entra-auth.ts';

const NAME = 'microsoft-graph';
/** Entra object ids are GUIDs; they go into URL paths as they are. */
const OBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Why a risk-level-change is not acted on, or undefined when it confirms a compromise. */
export function riskRefusal(event: Record<string, unknown>, confirm: boolean): string | undefined {
  if (event.principal !== 'USER' || event.current_level !== 'HIGH') {
    return `only a user's risk rising to HIGH is acted on (got ${String(event.principal)} ${String(event.current_level)})`;
  }
  if (!confirm) {
    return 'confirm_compromised is off: confirming a compromise is sticky, so it is opt-in';
  }
  return undefined;
}

/**
 * Microsoft Entra ID through Microsoft Graph: revokes sign-in sessions, disables accounts and,
 * when opted in, confirms users compromised in Identity Protection (one request per second).
 */
export function createMicrosoftGraph(ctx: ConnectorContext, config: GraphConfig): OutboundConnector {
  const http = ctx.http.create({
    baseURL: config.graph_url,
    timeoutMs: config.request_timeout,
    auth: entraAuth({
      tokenUrl:
        config.token_url ??
        `https://login.microsoftonline.com/${encodeURIComponent(config.tenant_id)}/oauth2/v2.0/token`,
      clientId: config.client_id,
      scope: `${config.graph_url}/.default`,
      credentials: config,
    }),
  });
  const graph = new GraphClient(http);
  const now = () => ctx.clock.now().getTime();
  const ids = new TtlCache<string>(config.user_cache_ttl, now);
  const identityProtection = new Pacer(config.identity_protection_interval, now);
  const actions = ctx.metrics.counter(
    'microsoft_graph_actions_total',
    'Graph actions taken, by action and outcome',
    ['action', 'outcome'],
  );

  /**
   * Acts on the subject's Entra user. A 404 from the action drops the cached object id: the user
   * may have been deleted and made again under the same UPN, and is looked up afresh next time.
   */
  async function onUser<T>(set: SignedSet, signal: AbortSignal, act: (id: string) => Promise<T>): Promise<T> {
    const { id, key } = await objectId(set, signal);
    try {
      return await act(id);
    } catch (err) {
      if (isNotFound(err)) ids.delete(key);
      throw err;
    }
  }

  async function objectId(set: SignedSet, signal: AbortSignal): Promise<{ id: string; key: string }> {
    const email = userEmail(set.subject);
    if (!email) {
      throw refuse(
        NAME,
        `cannot find an Entra user from a ${subjectFormats(set.subject)} subject; send the UPN or email`,
      );
    }
    const key = email.toLowerCase();
    const id = ids.get(key) ?? (await graph.userIdFor(email, signal));
    if (!id || !OBJECT_ID.test(id)) throw refuse(NAME, `no Entra user has the UPN or mail ${email}`);
    ids.set(key, id);
    return { id, key };
  }

  const revoke = (id: string, signal: AbortSignal) =>
    counted(actions, { action: 'revoke_sessions' }, () => graph.revokeSignInSessions(id, signal));

  return {
    target: { audience: `urn:ssf-bridge:microsoft-graph:${config.tenant_id}`, profile: 'ssf-1.0' },
    async start() {},
    async stop() {},
    async deliver(set, signal) {
      switch (set.eventType) {
        case SESSION_REVOKED: {
          const status = await onUser(set, signal, (id) => revoke(id, signal));
          return { status, detail: 'sign-in sessions revoked' };
        }
        case ACCOUNT_DISABLED: {
          const status = await onUser(set, signal, async (id) => {
            if (config.disable_account) {
              await counted(actions, { action: 'disable_account' }, () => graph.disable(id, signal));
            }
            return revoke(id, signal);
          });
          return {
            status,
            detail: config.disable_account ? 'account disabled, sessions revoked' : 'sessions revoked',
          };
        }
        case RISK_LEVEL_CHANGE: {
          const why = riskRefusal(set.event, config.confirm_compromised);
          if (why) throw refuse(NAME, why);
          const status = await onUser(set, signal, (id) =>
            counted(actions, { action: 'confirm_compromised' }, () =>
              identityProtection.run(() => graph.confirmCompromised(id, signal), signal),
            ),
          );
          return { status, detail: 'user confirmed compromised in Identity Protection' };
        }
        default:
          throw refuse(
            NAME,
            `Microsoft Graph actions exist for session-revoked, account-disabled and risk-level-change, not ${shortName(set.eventType)}`,
          );
      }
    },
  };
}
