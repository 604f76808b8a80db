import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { oktaItp } from './index.ts';

runConnectorConformance(oktaItp, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({ org_url: server.url }),
  invalidConfigs: [
    { config: {}, error: 'org_url' },
    {
      config: { org_url: 'https://example.okta.com', account_disabled: 'delete' },
      error: 'account_disabled',
    },
  ],
  outbound: {
    // Okta requires a reason on session-revoked; the kit signs without the connector's prepare().
    event: {
      type: 'caep.session-revoked',
      subject: { format: 'email', email: 'pat.lee@example.com' },
      claims: { reason_admin: { en: 'Conformance check' } },
      sourceRecordId: 'kit-record-1',
    },
  },
  metrics: [
    { name: 'okta_itp_sets_total', labels: { outcome: 'ok' }, value: (t) => t.delivered },
    { name: 'okta_itp_sets_total', labels: { outcome: 'retryable' }, value: (t) => t.failed },
  ],
});
