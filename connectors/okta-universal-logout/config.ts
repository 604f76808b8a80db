import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { oktaOrgUrl, requestTimeout } from '../_shared/outbound-config.ts';

export const TRIGGERS = ['session-revoked', 'account-disabled', 'credential-compromise'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const configSchema = z
  .strictObject({
    org_url: oktaOrgUrl('Your Okta org, e.g. https://example.okta.com.'),
    client_id: z.string().min(1).meta({
      description:
        'Client id of an Okta API Services app that authenticates with a public/private key pair (private_key_jwt).',
    }),
    private_key: secret('The private key of that app: a PKCS#8 PEM or a private JWK.'),
    key_id: z.string().min(1).optional().meta({
      description: 'The key id (kid) Okta shows for the public key; a JWK’s own kid is used when absent.',
    }),
    trigger_on: z
      .array(z.enum(TRIGGERS))
      .min(1)
      .default([...TRIGGERS])
      .meta({
        description:
          'Events that revoke the user’s Okta sessions and tokens: caep.session-revoked, risc.account-disabled, risc.credential-compromise.',
      }),
    deactivate_on_account_disabled: z.boolean().default(false).meta({
      description:
        'On risc.account-disabled (a leaver), also deactivate the user in Okta after revoking their sessions and tokens. The app then needs the okta.users.manage scope.',
    }),
    user_cache_ttl: duration(
      'How long an email → Okta user id lookup is reused; 0 turns the cache off.',
    ).default(3_600_000),
    request_timeout: requestTimeout(15_000),
  })
  // Leavers are deactivated only on the account-disabled trigger: without it the setting would
  // never act, while the app still had to be granted okta.users.manage.
  .refine((c) => !c.deactivate_on_account_disabled || c.trigger_on.includes('account-disabled'), {
    message: 'deactivate_on_account_disabled needs account-disabled in trigger_on',
    path: ['deactivate_on_account_disabled'],
  });

export type UniversalLogoutConfig = z.output<typeof configSchema>;
