import { duration, secret, z } from '../../core/plugin-api/index.ts';

export const configSchema = z.strictObject({
  base_url: z.url().meta({ description: 'Base URL of the vendor API, e.g. https://api.vendor.example.' }),
  api_token: secret('API token, sent as a bearer token.'),
  audience: z
    .string()
    .min(1)
    .default('https://api.vendor.example')
    .meta({ description: 'Audience (aud) of the SETs signed for this destination.' }),
  request_timeout: duration('Time allowed for one request to the vendor API.', {
    min: 100,
    max: 600_000,
  }).prefault('30s'),
});

export type ExampleOutboundConfig = z.output<typeof configSchema>;
