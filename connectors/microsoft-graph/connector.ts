import {
  PermanentError,
  RetryableError,
  classOf,
  type ConnectorContext,
  type DeliveryReceipt,
  type OutboundConnector,
  type SignedSet,
} from '../../core/plugin-api/index.ts';
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
   * Acts on the subject's Entra user. A cached object id Graph answers 404 for is dropped and the
   * user looked up again at once: the user may have been deleted and made again under the same
   * UPN, and the event is for the new account. An id is cached when it is looked up, so an entry
   * expires `user_cache_ttl` after the lookup however often it is used.
   */
  async function onUser<T>(set: SignedSet, signal: AbortSignal, act: (id: string) => Promise<T>): Promise<T> {
    const email = userEmail(set.subject);
    if (!email) {
      throw refuse(
        NAME,
        `cannot find an Entra user from a ${subjectFormats(set.subject)} subject; send the UPN or email`,
      );
    }
    const key = email.toLowerCase();
    const cached = ids.get(key);
    if (cached !== undefined) {
      try {
        return await act(cached);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        ids.delete(key);
      }
    }
    const id = await graph.userIdFor(email, signal);
    if (!id || !OBJECT_ID.test(id)) throw refuse(NAME, `no Entra user has the UPN or mail ${email}`);
    ids.set(key, id);
    try {
      return await act(id);
    } catch (err) {
      if (isNotFound(err)) ids.delete(key);
      throw err;
    }
  }

  const revoke = (id: string, signal: AbortSignal) =>
    counted(actions, { action: 'revoke_sessions' }, () => graph.revokeSignInSessions(id, signal));

  /**
   * risc.account-disabled with disable_account: the account is disabled, then its sessions are
   * revoked — whatever the disable answered, so a leaver whose account cannot be disabled here
   * (synchronised from on-premises AD, a privileged role, no permission to disable) still loses
   * their refresh tokens. The disable's failure is reported after the revocation: retried when it
   * is transient (revoking again is harmless), dead-lettered otherwise, saying the sessions were
   * revoked.
   */
  async function disableAndRevoke(id: string, signal: AbortSignal): Promise<DeliveryReceipt> {
    let disableError: unknown;
    try {
      await counted(actions, { action: 'disable_account' }, () => graph.disable(id, signal));
    } catch (err) {
      // No such user (a stale cached id): nothing to revoke either; onUser looks the user up again.
      if (isNotFound(err)) throw err;
      disableError = err;
    }
    let status: number;
    try {
      status = await revoke(id, signal);
    } catch (err) {
      if (disableError !== undefined) {
        ctx.logger.warn(
          { userId: id, disableError: errorText(disableError) },
          'could not disable the Entra account, nor revoke its sessions',
        );
      }
      throw err;
    }
    if (disableError === undefined) return { status, detail: 'account disabled, sessions revoked' };
    throw disableFailure(id, disableError);
  }

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
          if (config.disable_account) return onUser(set, signal, (id) => disableAndRevoke(id, signal));
          const status = await onUser(set, signal, (id) => revoke(id, signal));
          return { status, detail: 'sessions revoked' };
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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What an operator can do about a disable Graph refused, by its answer. */
function disableHint(err: unknown): string {
  const status = err instanceof PermanentError ? err.detail?.status : undefined;
  const text = errorText(err);
  if (status === 400 && /on-premises|directory sync/i.test(text)) {
    return ' The user is synchronised from on-premises Active Directory: disable the account there.';
  }
  if (status === 403) {
    return (
      ' The app needs User.EnableDisableAccount.All (or User.ReadWrite.All), and a privileged role ' +
      '(e.g. Privileged Authentication Administrator) to disable an administrator; ' +
      'or set disable_account: false to only revoke sessions.'
    );
  }
  return '';
}

/**
 * The error of an account-disabled whose sessions were revoked but whose account was not
 * disabled: of the class of the disable's failure (retried when it was transient), never
 * flagging the credentials, which just revoked the sessions.
 */
function disableFailure(id: string, err: unknown): RetryableError | PermanentError {
  const reason = errorText(err).replace(/\.+$/, '');
  const message = `sign-in sessions of ${id} revoked, but the account could not be disabled: ${reason}.`;
  const status =
    err instanceof PermanentError || err instanceof RetryableError ? err.detail?.status : undefined;
  const detail = {
    sessionsRevoked: true,
    accountDisabled: false,
    ...(typeof status === 'number' ? { status } : {}),
  };
  if (classOf(err) === 'retryable' || classOf(err) === 'not_connected') {
    return new RetryableError(`${message} Retried (revoking the sessions again is harmless).`, {
      code: 'SSF_ERR_GRAPH_DISABLE_FAILED',
      cause: err,
      detail,
      ...(err instanceof RetryableError && err.retryAfterMs !== undefined
        ? { retryAfterMs: err.retryAfterMs }
        : {}),
    });
  }
  return new PermanentError(`${message}${disableHint(err)}`, {
    code: 'SSF_ERR_GRAPH_DISABLE_FAILED',
    cause: err,
    detail,
  });
}
