import type { ConnectorContext, HttpAuth, OutboundConnector } from '../../core/plugin-api/index.ts';
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
import { SCIM_JSON, ScimClient } from './client.ts';
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
        const user = await scim.find(name, signal);
        if (!user) return { detail: `no SCIM user has the userName or email ${name}; nothing to do` };
        if (!purge && user.active === false) return { detail: `${name} is already inactive` };
        const status = await (purge ? scim.remove(user.id, signal) : scim.deactivate(user.id, signal));
        // A 404 on the user itself means someone got there first: the outcome asked for holds.
        if (status === 404) return { status, detail: `${name} was already gone` };
        return { status, detail: purge ? `${name} deleted` : `${name} deactivated` };
      });
    },
  };
}
