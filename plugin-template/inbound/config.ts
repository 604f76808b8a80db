import { duration, secret, z } from '../../core/plugin-api/index.ts';

export const configSchema = z.strictObject({
  base_url: z.url().meta({ description: 'Base URL of the vendor API, e.g. https://api.vendor.example.' }),
  api_token: secret('API token, sent as a bearer token.'),
  poll_interval: duration('Time between two polls of the alerts API.', { min: 100 }).prefault('1m'),
  page_size: z
    .number()
    .int()
    .min(1)
    .max(500)
    .default(100)
    .meta({ description: 'Alerts asked for per request.' }),
  request_timeout: duration('Time allowed for one request to the vendor API.', {
    min: 100,
    max: 600_000,
  }).prefault('30s'),
  webhook_secret: secret(
    'Shared secret the vendor signs its webhooks with (HMAC-SHA256 of the body in X-Vendor-Signature). Unset, the instance takes no webhooks and only polls.',
  ).optional(),
});

export type ExampleInboundConfig = z.output<typeof configSchema>;

/** What is committed after each page: the id of the last alert read. */
export const stateSchema = z.strictObject({ after: z.string().min(1) });

export type ExampleInboundState = z.output<typeof stateSchema>;
