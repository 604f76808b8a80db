import {
  PermanentError,
  type ConnectorContext,
  type HttpAuth,
  type OutboundConnector,
} from '../../core/plugin-api/index.ts';
import {
  ACCOUNT_DISABLED,
  ACCOUNT_PURGED,
  counted,
  refuse,
  shortName,
  subjectFormats,
  userEmail,
} from '../_shared/outbound-common.ts';
import { oauthAuth } from '../_shared/outbound-config.ts';
import { SCIM_JSON, ScimClient, scimDetail } from './client.ts';
import type { ScimConfig } from './config.ts';

const NAME = 'scim-deprovision';

function authOf(config: ScimConfig): HttpAuth {
  return config.token
    ? { type: 'bearer', token: config.token }
    : oauthAuth(config.oauth as NonNullable<ScimConfig['oauth']>);
}

/**
 * SCIM 2.0 deprovisioning: deactivates (`active: false`) users whose account was disabled and,
 * when enabled, deletes users whose account was purged.
 */
export function createScimDeprovision(ctx: ConnectorContext, config: ScimConfig): OutboundConnector {
  const http = ctx.http.create({
    baseURL: config.base_url,
    timeoutMs: config.request_timeout,
    auth: authOf(config),
    headers: { accept: `${SCIM_JSON}, application/json` },
  });
  const scim = new ScimClient(http);
  const actions = ctx.metrics.counter(
    'scim_deprovision_actions_total',
    'SCIM actions, by action and outcome',
    ['action', 'outcome'],
  );

  return {
    target: { audience: `urn:ssf-bridge:scim:${config.base_url}`, profile: 'ssf-1.0' },
    async start() {},
    async stop() {},
    async deliver(set, signal) {
      const purge = set.eventType === ACCOUNT_PURGED;
      if (!purge && set.eventType !== ACCOUNT_DISABLED) {
        throw refuse(
          NAME,
          `SCIM deprovisioning acts on account-disabled and account-purged, not ${shortName(set.eventType)}`,
        );
      }
      if (purge && !config.delete_on_purge) {
        throw refuse(NAME, 'delete_on_purge is off, so purged accounts are not deleted');
      }
      const name = userEmail(set.subject);
      if (!name)
        throw refuse(
          NAME,
          `cannot find a SCIM user from a ${subjectFormats(set.subject)} subject; send the email`,
        );
      return counted(actions, { action: purge ? 'delete' : 'deactivate' }, async () => {
        const found = await scim.find(name, signal);
        if (!found) return { detail: `no SCIM user has the userName or email ${name}; nothing to do` };
        const { user } = found;
        if (!purge && user.active === false) return { detail: `${name} is already inactive` };
        const written = await (purge ? scim.remove(user.id, signal) : scim.deactivate(user.id, signal));
        const { status } = written;
        if (status !== 404) return { status, detail: purge ? `${name} deleted` : `${name} deactivated` };
        // A 404 is "already gone" only if the search that found the user no longer does: a server
        // also answers 404 for a route it does not serve, or a user the token's scope hides.
        const still = await scim.findAgain(found, signal);
        if (still === undefined) return { status, detail: `${name} was already gone` };
        if (!purge && still.active === false) return { status, detail: `${name} is already inactive` };
        const method = purge ? 'DELETE' : 'PATCH';
        const said = scimDetail(written.body);
        throw new PermanentError(
          `${method} /Users/${user.id} answered 404${said ? ` (${said})` : ''}, yet the search still finds ${name} (id ${user.id}${still.active === true ? ', active' : ''}): the server does not serve that ${method} for this token, or hides the user from it, so ${name} was not ${purge ? 'deleted' : 'deactivated'}; check the token's scope and the app's SCIM support, or deprovision the user in the app`,
          { code: 'SSF_ERR_SCIM_USER_NOT_WRITTEN', detail: { status, method, id: user.id } },
        );
      });
    },
  };
}
