import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createOktaItp } from './connector.ts';

/** Okta Identity Threat Protection: SETs pushed to Okta's SSF receiver. */
export const oktaItp = defineConnector({
  manifest: {
    id: 'okta-itp',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Okta Identity Threat Protection',
    description:
      "Pushes risk, session, device-compliance and identifier events to Okta ITP's SSF receiver, in Okta's dialect (okta-itp profile), with previous risk levels tracked per subject.",
    accepts: [
      'caep.session-revoked',
      'caep.device-compliance-change',
      'caep.risk-level-change',
      'risc.identifier-changed',
      'risc.account-disabled',
      'risc.credential-compromise',
      'okta.user-risk-change',
      'okta.device-risk-change',
      'okta.ip-change',
    ],
  },
  configSchema,
  examples: [
    { title: 'Okta org with the default policy', config: { org_url: 'https://example.okta.com' } },
    {
      title: 'Devices included, account-disabled refused',
      config: { org_url: 'https://example.okta.com', include_device: true, account_disabled: 'refuse' },
    },
  ],
  create: (ctx, config) => createOktaItp(ctx, config),
});
