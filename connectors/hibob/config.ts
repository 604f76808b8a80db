import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { leaverPolicyShape } from '../_shared/hr-leaver.ts';

export const configSchema = z.strictObject({
  webhook_secret: secret(
    'Secret of the webhook in Bob (Settings → Integrations → Webhooks); signs Bob-Signature.',
  ),
  previous_webhook_secret: secret(
    'A second accepted webhook secret, for rotating without dropping deliveries.',
  ).optional(),
  signature_algorithm: z
    .enum(['sha512', 'sha256'])
    .default('sha512')
    .meta({ description: 'HMAC hash of Bob-Signature (base64 of the HMAC of the raw body).' }),
  service_user_id: z
    .string()
    .min(1)
    .meta({ description: 'Id of the Bob service user that reads employees.' }),
  service_user_token: secret('Token of the Bob service user.'),
  api_base_url: z
    .url({ protocol: /^https?$/ })
    .default('https://api.hibob.com/v1')
    .meta({ description: 'Bob Public API base URL.' }),
  max_event_age: duration(
    'Webhook events whose triggeredAt is older than this (or as far in the future) are refused as replays.',
  ).prefault('24h'),
  garden_leave: z
    .enum(['leaver', 'ignore'])
    .default('leaver')
    .meta({ description: 'Whether an employee on garden leave is treated as a leaver.' }),
  release_interval: duration('How often held (future-dated) terminations are checked.', {
    min: 1000,
  }).prefault('1m'),
  request_timeout: duration('Timeout of one request to the Bob API.', { min: 100, max: 600_000 }).prefault(
    '30s',
  ),
  ...leaverPolicyShape,
});

export type HibobConfig = z.output<typeof configSchema>;
