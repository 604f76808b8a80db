import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { leaverPolicyShape } from '../_shared/hr-leaver.ts';

const oauthSchema = z
  .strictObject({
    client_id: z
      .string()
      .min(1)
      .meta({ description: 'Client id of the OAuth app registered in the BambooHR developer portal.' }),
    client_secret: secret('Client secret of the OAuth app.'),
    refresh_token: secret(
      'Refresh token from authorizing the app for the company (with the offline_access scope). BambooHR may replace it at each refresh; the replacement is kept in the instance state, sealed under a key derived from client_secret, so this value is only read until then.',
    ),
    token_url: z
      .url({ protocol: /^https?$/ })
      .optional()
      .meta({
        description:
          'Token endpoint; defaults to https://<company_domain>.bamboohr.com/token.php?request=token.',
      }),
    redirect_uri: z.url().optional().meta({
      description: 'Redirect URI of the app, sent with each refresh for apps registered to need it.',
    }),
  })
  .meta({ description: 'OAuth 2.0 app credentials: access tokens are obtained with the refresh token.' });

export type BambooHrOAuth = z.output<typeof oauthSchema>;

export const configSchema = z
  .strictObject({
    company_domain: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/i, 'must be the company subdomain, e.g. acme for acme.bamboohr.com')
      .meta({ description: 'BambooHR company domain: `acme` for acme.bamboohr.com.' }),
    api_key: secret(
      'API key of a BambooHR user allowed to read employees (sent as the Basic user name). Set this or `oauth`.',
    ).optional(),
    oauth: oauthSchema.optional(),
    api_base_url: z
      .url({ protocol: /^https?$/ })
      .optional()
      .meta({
        description:
          'API base; defaults to https://api.bamboohr.com/api/gateway.php/<company_domain>/v1 with `api_key`, https://<company_domain>.bamboohr.com/api/v1 with `oauth`.',
      }),
    mode: z.enum(['webhook', 'poll', 'webhook_and_poll']).default('webhook').meta({
      description:
        '`webhook`: event-based webhooks at /ingest/<instance-id>; `poll`: /employees/changed; `webhook_and_poll`: both, the poll catching anything a webhook missed.',
    }),
    webhook_private_key: secret(
      'Private key BambooHR shows when the webhook is created; signs X-BambooHR-Signature.',
    ).optional(),
    previous_webhook_private_key: secret(
      'A second accepted private key, for replacing the webhook without dropping deliveries.',
    ).optional(),
    replay_window: duration('Largest accepted age (or clock skew) of X-BambooHR-Timestamp.').prefault('5m'),
    poll_interval: duration('How often /employees/changed is polled (poll modes).', { min: 100 }).prefault(
      '15m',
    ),
    initial_lookback: duration('How far back the first poll asks for changes.').prefault('1d'),
    terminated_statuses: z.array(z.string().min(1)).min(1).default(['Terminated']).meta({
      description: 'Employment status values (employmentHistoryStatus) that mean the employee left.',
    }),
    username_field: z.string().min(1).optional().meta({
      description: 'Field (or custom field alias) holding the user name, if one is kept in BambooHR.',
    }),
    release_interval: duration('How often held (future-dated) terminations are checked.', {
      min: 1000,
    }).prefault('1m'),
    request_timeout: duration('Timeout of one request to the BambooHR API.', {
      min: 100,
      max: 600_000,
    }).prefault('30s'),
    ...leaverPolicyShape,
  })
  .refine((c) => c.api_key !== undefined || c.oauth !== undefined, {
    message:
      'BambooHR needs credentials: api_key (an API key, sent with Basic auth), or oauth (client_id, client_secret and refresh_token of an authorized OAuth app)',
    path: ['api_key'],
  })
  .refine((c) => c.api_key === undefined || c.oauth === undefined, {
    message: 'set api_key or oauth, not both: each is a complete way to authenticate',
    path: ['oauth'],
  })
  .refine((c) => c.mode === 'poll' || c.webhook_private_key !== undefined, {
    message: 'webhook modes need webhook_private_key (the key BambooHR shows for the webhook)',
    path: ['webhook_private_key'],
  });

export type BambooHrConfig = z.output<typeof configSchema>;
