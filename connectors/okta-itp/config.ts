import { z } from '../../core/plugin-api/index.ts';
import { oktaOrgUrl, requestTimeout } from '../_shared/outbound-config.ts';

export const configSchema = z.strictObject({
  org_url: oktaOrgUrl(
    'Your Okta org, e.g. https://example.okta.com; SETs go to <org_url>/security/api/v1/security-events.',
  ),
  audience: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'The SET audience (aud); defaults to org_url, which is what Okta expects.' }),
  include_device: z
    .boolean()
    .default(false)
    .meta({
      description:
        'Send device identifiers to Okta: the device member of a complex subject goes with device-compliance-change. ' +
        'Off, those events name the user only. device-risk-change always carries its device.',
    }),
  account_disabled: z
    .enum(['session-revoked', 'refuse'])
    .default('session-revoked')
    .meta({
      description:
        'Okta has no account-disabled event. `session-revoked`: send risc.account-disabled as caep.session-revoked ' +
        '(the reason says the account was disabled); `refuse`: dead-letter it with that reason.',
    }),
  credential_compromise: z.enum(['user-risk-change', 'refuse']).default('user-risk-change').meta({
    description:
      '`user-risk-change`: send risc.credential-compromise as an Okta user-risk-change to high; `refuse`: dead-letter it.',
  }),
  default_reason: z
    .string()
    .min(1)
    .default('Security signal relayed by ssf-bridge')
    .meta({
      description:
        'reason_admin (en) for events that carry no reason; Okta requires one on every event type except identifier-changed. ' +
        'Also the en entry added to a reason given only in other languages, since Okta requires en.',
    }),
  request_timeout: requestTimeout(10_000),
});

export type OktaItpConfig = z.output<typeof configSchema>;
