import { duration, secret, z } from '../../core/plugin-api/index.ts';

export const configSchema = z.strictObject({
  api_url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).meta({
    description:
      'Your tenant API URL from Settings → Access, e.g. https://acme.api.kandji.io (EU: https://acme.api.eu.kandji.io).',
  }),
  api_token: secret('API token with the Device list and Device details permissions.'),
  poll_interval: duration()
    .prefault('15m')
    .meta({ description: 'Time between two scans of the device list.' }),
  max_requests_per_hour: z.number().int().min(10).max(10_000).default(5_000).meta({
    description:
      'Requests this instance may make in any hour. Kandji allows 10,000 per tenant; keep room for other integrations. Devices left over wait for the next scan.',
  }),
  status_concurrency: z
    .number()
    .int()
    .min(1)
    .max(10)
    .default(4)
    .meta({ description: 'Device status requests in flight at once.' }),
  include_library_items: z.boolean().default(true).meta({
    description:
      'Count library items in ERROR (failed installs, failed profiles) as failing checks, besides blueprint parameters.',
  }),
  first_sighting: z.enum(['baseline', 'emit']).default('baseline').meta({
    description:
      '`baseline` (default): the first status seen for a device is recorded without an event. `emit`: it is sent, with the opposite status as previous_status.',
  }),
  vanished_devices: z.enum(['not-compliant', 'forget', 'keep']).default('not-compliant').meta({
    description:
      'A device missing from a complete scan: `not-compliant` (default) sends compliant → not-compliant for a device last known compliant, then forgets it; `forget` drops it silently; `keep` keeps its last state.',
  }),
  max_retry_wait: duration().prefault('2m').meta({
    description:
      'Longest total time one scan waits on throttling (429 Retry-After) and server errors before it gives up until the next scan.',
  }),
});

export type KandjiConfig = z.output<typeof configSchema>;
