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

/** Who the user is, as Okta takes it: a sub_id to send as it is, or a login or email to look up. */
export type UserRef = { subId: SubId } | { lookup: string };

function isOktaUserId(value: unknown): value is string {
  return typeof value === 'string' && OKTA_USER_ID.test(value);
}

/**
 * Whether `iss` is this org: its URL, or one of its authorization servers (`<org>/oauth2/<id>`,
 * e.g. `default`). Their `sub` is an Okta user id or login, never a third-party IdP's subject.
 */
export function isOrgIssuer(iss: string, orgUrl: string): boolean {
  try {
    const url = new URL(iss);
    return url.origin === new URL(orgUrl).origin && /^(\/oauth2\/[^/]+)?\/?$/.test(url.pathname);
  } catch {
    return false;
  }
}

/**
 * What one identifier tells Okta. Okta: "Use the opaque format for Okta user IDs. For users
 * authenticated through a SAML or OIDC IdP, use the iss_sub format" (vendor-formats §3.2).
 */
function refOf(id: SubjectIdentifier, orgUrl: string): UserRef | undefined {
  if (id.format === 'opaque')
    return isOktaUserId(id.id) ? { subId: { format: 'opaque', id: id.id } } : undefined;
  if (id.format === 'iss_sub' && typeof id.iss === 'string' && typeof id.sub === 'string') {
    if (!isOrgIssuer(id.iss, orgUrl)) return { subId: { format: 'iss_sub', iss: id.iss, sub: id.sub } };
    // An authorization server may issue the login as sub (Okta's default for access tokens).
    return isOktaUserId(id.sub) ? { subId: { format: 'opaque', id: id.sub } } : { lookup: id.sub };
  }
  const email = userEmail(id);
  return email ? { lookup: email } : undefined;
}

/** Aliases are tried in this order: Okta user ids, this org's iss_sub, then emails. */
const ALIAS_RANK: Record<string, number> = { opaque: 0, iss_sub: 1 };

/**
 * The alias that names the Okta user most directly. Another issuer's iss_sub is passed over:
 * aliases come from HR sources, whose employee ids no IdP federated with Okta knows.
 */
function aliasRef(aliases: SubjectIdentifier[], orgUrl: string): UserRef | undefined {
  const refs = aliases
    .filter((a) => a.format !== 'iss_sub' || (typeof a.iss === 'string' && isOrgIssuer(a.iss, orgUrl)))
    .sort((a, b) => (ALIAS_RANK[a.format] ?? 2) - (ALIAS_RANK[b.format] ?? 2))
    .map((a) => refOf(a, orgUrl))
    .filter((ref) => ref !== undefined);
  return refs.find((ref) => 'subId' in ref) ?? refs[0];
}

/** How the subject's user (a complex subject's user member) is named to Okta, if it can be. */
export function userRef(subject: SubjectIdentifier, orgUrl: string): UserRef | undefined {
  const user = userSubject(subject);
  if (user?.format !== 'aliases') return user && refOf(user, orgUrl);
  return aliasRef(Array.isArray(user.identifiers) ? (user.identifiers as SubjectIdentifier[]) : [], orgUrl);
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
    fresh = false,
  ): Promise<{ subId: SubId; cacheKey?: string }> {
    const ref = userRef(subject, config.org_url);
    if (!ref) {
      throw refuse(
        NAME,
        `cannot find an Okta user from a subject of format ${subjectFormats(subject)}; send an email, an Okta user id or iss_sub`,
      );
    }
    if ('subId' in ref) return { subId: ref.subId };
    const key = ref.lookup.toLowerCase();
    const cached = fresh ? undefined : ids.get(key);
    if (cached !== undefined) return { subId: { format: 'opaque', id: cached }, cacheKey: key };
    const id = await okta.userIdFor(ref.lookup, signal);
    if (!id) throw refuse(NAME, `no Okta user has the login or email ${ref.lookup}`);
    // Cached when looked up only, so the entry expires user_cache_ttl after the lookup.
    ids.set(key, id);
    return { subId: { format: 'opaque', id } };
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
        const { subId, cacheKey } = await subIdOf(set.subject, signal);
        try {
          return { subId, status: await okta.revoke(subId, signal) };
        } catch (err) {
          // A cached id may belong to a user since deleted, the login now another's: look the
          // login up again at once and log out the user who has it now.
          if (!cacheKey || !isStatus(err, 404)) throw err;
          ids.delete(cacheKey);
          const current = await subIdOf(set.subject, signal, true);
          return { subId: current.subId, status: await okta.revoke(current.subId, signal) };
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
