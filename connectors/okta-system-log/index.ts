import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema, stateSchema } from './config.ts';
import { createOktaSystemLog, POLL_TASK } from './connector.ts';
import { compareProfile, isOktaUser } from './identifiers.ts';
import { mapLogEvent, mappingOptions } from './mapping.ts';

export { POLL_TASK };

/** Okta System Log: account lifecycle, credential and risk changes from Okta's audit log. */
export const oktaSystemLog = defineConnector({
  manifest: {
    id: 'okta-system-log',
    kind: 'inbound',
    version: '0.1.0',
    stability: 'beta',
    displayName: 'Okta System Log',
    description:
      "Polls Okta's System Log and turns user deactivations, suspensions, reactivations and deletions, login and email changes, password and factor changes, and risk changes into RISC and CAEP events.",
    emits: [
      'risc.account-disabled',
      'risc.account-enabled',
      'risc.account-purged',
      'risc.identifier-changed',
      'caep.session-revoked',
      'caep.credential-change',
      'caep.risk-level-change',
    ],
    capabilities: { poll: true },
  },
  configSchema,
  stateSchema,
  examples: [
    {
      title: 'API token from the environment',
      config: { org_url: 'https://acme.okta.com', auth: { type: 'ssws', token: '${env:OKTA_API_TOKEN}' } },
    },
    {
      title: 'OAuth service app',
      config: {
        org_url: 'https://acme.okta.com',
        auth: {
          type: 'oauth',
          client_id: '0oa1logreader',
          private_key: '${file:/run/secrets/okta-logs.pem}',
        },
        poll_interval: '30s',
      },
    },
  ],
  // A payload is a System Log event, or (with identifier_changes) the user object Okta's Users API
  // answers for a profile update awaiting it, as the running connector reads it.
  map: (record, config, state) => {
    const working = structuredClone(state ?? {});
    if (config.identifier_changes && isOktaUser(record))
      return compareProfile(record, working, new Date(), config.identifier_memory);
    return mapLogEvent(record, mappingOptions(config), working);
  },
  create: createOktaSystemLog,
});
