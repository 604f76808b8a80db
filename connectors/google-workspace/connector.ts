import {
  type ConnectorContext,
  type OutboundConnector,
  type SignedSet,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';
import {
  ACCOUNT_DISABLED,
  SESSION_REVOKED,
  counted,
  refuse,
  shortName,
  subjectFormats,
  userEmail,
  userSubject,
} from '../_shared/outbound-common.ts';
import { pushSet } from '../_shared/outbound-push.ts';
import { DirectoryClient } from './client.ts';
import { iamSigner } from './keyless.ts';
import type { DirectoryConfig, GoogleWorkspaceConfig } from './config.ts';

const NAME = 'google-workspace';
export const GOOGLE_SSF_AUDIENCE = 'https://sharedsignals.googleapis.com';
const SECURITY_SCOPE = 'https://www.googleapis.com/auth/admin.directory.user.security';
const USER_SCOPE = 'https://www.googleapis.com/auth/admin.directory.user';
const GOOGLE_ISSUER = /^https:\/\/accounts\.google\.com\/?$/;

/** The Directory API userKey: the primary email, or the Google account id of an iss_sub subject. */
export function userKeyOf(subject: SubjectIdentifier): string | undefined {
  const user = userSubject(subject);
  if (user?.format === 'iss_sub' && typeof user.iss === 'string' && GOOGLE_ISSUER.test(user.iss)) {
    return typeof user.sub === 'string' ? user.sub : undefined;
  }
  return userEmail(subject);
}

function directory(ctx: ConnectorContext, config: DirectoryConfig, timeoutMs: number): OutboundConnector {
  const scopes = config.suspend_on_account_disabled ? `${SECURITY_SCOPE} ${USER_SCOPE}` : SECURITY_SCOPE;
  const grant = {
    type: 'jwt_bearer',
    tokenUrl: config.token_url,
    issuer: config.service_account_email,
    subject: config.admin_email,
    scope: scopes,
  } as const;
  const http = ctx.http.create({
    baseURL: config.api_url,
    timeoutMs,
    auth: config.keyless
      ? {
          ...grant,
          signer: iamSigner(
            ctx.http.create({ timeoutMs }),
            config.keyless,
            config.service_account_email,
            () => ctx.clock.now().getTime(),
          ),
        }
      : {
          ...grant,
          privateKey: config.private_key!,
          ...(config.private_key_id ? { keyId: config.private_key_id } : {}),
        },
  });
  const api = new DirectoryClient(http);
  const actions = ctx.metrics.counter(
    'google_workspace_actions_total',
    'Admin SDK actions, by action and outcome',
    ['action', 'outcome'],
  );

  // A 404 of the Directory API itself means no such user; one on the way to a token does not.
  async function act(action: string, userKey: string, work: () => Promise<number>): Promise<number> {
    return counted(actions, { action }, async () => {
      const status = await work();
      if (status === 404) throw refuse(NAME, `Google Workspace has no user ${userKey}`);
      return status;
    });
  }

  return {
    target: {
      audience: `urn:ssf-bridge:google-workspace:${config.admin_email.split('@')[1] ?? ''}`,
      profile: 'ssf-1.0',
    },
    async start() {},
    async stop() {},
    async deliver(set: SignedSet, signal: AbortSignal) {
      if (set.eventType !== SESSION_REVOKED && set.eventType !== ACCOUNT_DISABLED) {
        throw refuse(
          NAME,
          `the Directory API acts on session-revoked and account-disabled, not ${shortName(set.eventType)}`,
        );
      }
      const userKey = userKeyOf(set.subject);
      if (!userKey) {
        throw refuse(
          NAME,
          `cannot name a Google user from a ${subjectFormats(set.subject)} subject; send the primary email`,
        );
      }
      const status = await act('sign_out', userKey, () => api.signOut(userKey, signal));
      if (set.eventType === ACCOUNT_DISABLED && config.suspend_on_account_disabled) {
        await act('suspend', userKey, () => api.suspend(userKey, signal));
        return { status, detail: `${userKey} signed out and suspended` };
      }
      return { status, detail: `${userKey} signed out` };
    },
  };
}

function ssfPush(
  ctx: ConnectorContext,
  config: NonNullable<GoogleWorkspaceConfig['ssf_push']>,
  timeoutMs: number,
): OutboundConnector {
  const authorization = config.authorization_header;
  const client = ctx.http.create({
    timeoutMs,
    ...(authorization ? { auth: { type: 'header', name: 'Authorization', value: authorization } } : {}),
  });
  const actions = ctx.metrics.counter(
    'google_workspace_actions_total',
    'Admin SDK actions, by action and outcome',
    ['action', 'outcome'],
  );
  return {
    target: { audience: GOOGLE_SSF_AUDIENCE, profile: 'google-workspace' },
    async start() {},
    async stop() {},
    deliver: (set, signal) =>
      counted(actions, { action: 'push' }, () => pushSet(client, config.endpoint_url, set, { signal })),
  };
}

/**
 * Google Workspace: through the Admin SDK Directory API (sign out, suspend), or as an SSF push
 * to Google's Shared Signals receiver for orgs enrolled in that programme.
 */
export function createGoogleWorkspace(
  ctx: ConnectorContext,
  config: GoogleWorkspaceConfig,
): OutboundConnector {
  if (config.directory) return directory(ctx, config.directory, config.request_timeout);
  return ssfPush(
    ctx,
    config.ssf_push as NonNullable<GoogleWorkspaceConfig['ssf_push']>,
    config.request_timeout,
  );
}
