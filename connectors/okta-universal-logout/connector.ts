import type { ConnectorContext, OutboundConnector, SubjectIdentifier } from '../../core/plugin-api/index.ts';
import {
  ACCOUNT_DISABLED,
  CREDENTIAL_COMPROMISE,
  SESSION_REVOKED,
  TtlCache,
  counted,
  refuse,
  shortName,
  subjectFormats,
  userEmail,
  userSubject,
} from '../_shared/outbound-common.ts';
import { OktaClient, isStatus, type SubId } from './client.ts';
import type { Trigger, UniversalLogoutConfig } from './config.ts';

const NAME = 'okta-universal-logout';
const TRIGGER_OF: Record<string, Trigger> = {
  [SESSION_REVOKED]: 'session-revoked',
  [ACCOUNT_DISABLED]: 'account-disabled',
  [CREDENTIAL_COMPROMISE]: 'credential-compromise',
};
const OKTA_USER_ID = /^00u[0-9A-Za-z]{6,}$/;
const SCOPES = 'okta.universalLogout.manage okta.users.read';
/** Deactivating leavers needs the scope to manage users too (Okta refuses scopes not granted). */
const SCOPES_WITH_DEACTIVATION = `${SCOPES} okta.users.manage`;

/**
 * The sub_id Okta's Global Token Revocation takes, when the subject says it directly: an Okta
 * user id (opaque, or iss_sub issued by this org), or an iss_sub from an external IdP.
 */
export function directSubId(subject: SubjectIdentifier, orgUrl: string): SubId | undefined {
  const user = userSubject(subject);
  if (user?.format === 'opaque' && typeof user.id === 'string' && OKTA_USER_ID.test(user.id)) {
    return { format: 'opaque', id: user.id };
  }
  if (user?.format === 'iss_sub' && typeof user.iss === 'string' && typeof user.sub === 'string') {
    return user.iss.replace(/\/+$/, '') === orgUrl
      ? { format: 'opaque', id: user.sub }
      : { format: 'iss_sub', iss: user.iss, sub: user.sub };
  }
  return undefined;
}

/**
 * Okta Universal Logout: on the configured events, ends the user's Okta sessions and revokes
 * their tokens through Global Token Revocation, which also logs them out of apps that support
 * Universal Logout; optionally deactivates leavers (risc.account-disabled) as well.
 */
export function createUniversalLogout(
  ctx: ConnectorContext,
  config: UniversalLogoutConfig,
): OutboundConnector {
  const http = ctx.http.create({
    baseURL: config.org_url,
    timeoutMs: config.request_timeout,
    auth: {
      type: 'oauth2_private_key_jwt',
      tokenUrl: `${config.org_url}/oauth2/v1/token`,
      clientId: config.client_id,
      privateKey: config.private_key,
      scope: config.deactivate_on_account_disabled ? SCOPES_WITH_DEACTIVATION : SCOPES,
      ...(config.key_id ? { keyId: config.key_id } : {}),
    },
  });
  const okta = new OktaClient(http, () => ctx.clock.now().getTime());
  const ids = new TtlCache<string>(config.user_cache_ttl, () => ctx.clock.now().getTime());
  const revocations = ctx.metrics.counter(
    'okta_universal_logout_revocations_total',
    'Global token revocations, by outcome',
    ['outcome'],
  );
  const deactivations = ctx.metrics.counter(
    'okta_universal_logout_deactivations_total',
    'Leavers deactivated in Okta, by outcome',
    ['outcome'],
  );

  async function subIdOf(
    subject: SubjectIdentifier,
    signal: AbortSignal,
  ): Promise<{ subId: SubId; email?: string }> {
    const direct = directSubId(subject, config.org_url);
    if (direct) return { subId: direct };
    const email = userEmail(subject);
    if (!email) {
      throw refuse(
        NAME,
        `cannot find an Okta user from a ${subjectFormats(subject)} subject; send an email, an Okta user id or iss_sub`,
      );
    }
    const key = email.toLowerCase();
    const id = ids.get(key) ?? (await okta.userIdFor(email, signal));
    if (!id) throw refuse(NAME, `no Okta user has the login or email ${email}`);
    ids.set(key, id);
    return { subId: { format: 'opaque', id }, email: key };
  }

  return {
    target: { audience: `urn:ssf-bridge:okta-universal-logout:${config.org_url}`, profile: 'ssf-1.0' },
    async start() {},
    async stop() {},
    async deliver(set, signal) {
      const trigger = TRIGGER_OF[set.eventType];
      if (!trigger || !config.trigger_on.includes(trigger)) {
        throw refuse(
          NAME,
          `${shortName(set.eventType)} does not trigger Universal Logout (trigger_on: ${config.trigger_on.join(', ')})`,
        );
      }
      const { subId, status } = await counted(revocations, {}, async () => {
        const { subId, email } = await subIdOf(set.subject, signal);
        try {
          return { subId, status: await okta.revoke(subId, signal) };
        } catch (err) {
          // The cached id may belong to a user since deleted; look it up afresh next time.
          if (email && isStatus(err, 404)) ids.delete(email);
          throw err;
        }
      });
      const who = subId.format === 'opaque' ? subId.id : subId.sub;
      const revoked = `Okta revoked the sessions and tokens of ${who}`;
      if (set.eventType !== ACCOUNT_DISABLED || !config.deactivate_on_account_disabled) {
        return { status, detail: revoked };
      }
      if (subId.format !== 'opaque') {
        throw refuse(
          NAME,
          `${revoked}, but cannot deactivate a user named by another issuer's iss_sub; send an email or an Okta user id`,
        );
      }
      const now = await counted(deactivations, {}, () => okta.deactivate(subId.id, signal));
      return {
        status,
        detail: `${revoked}, and ${now ? 'deactivated them' : 'found them deactivated already'}`,
      };
    },
  };
}
