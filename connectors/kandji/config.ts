import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { scanPolicyShape } from '../_shared/mdm-mapping.ts';
import { maxRetryWaitField, vendorUrlField } from '../_shared/mdm-poller.ts';

export const configSchema = z.strictObject({
  api_url: vendorUrlField(
    'Your tenant API URL from Settings → Access, e.g. https://acme.api.kandji.io (EU: https://acme.api.eu.kandji.io).',
  ),
  api_token: secret('API token with the Device list and Device details permissions.'),
  poll_interval: duration(undefined, { min: 100 })
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
  ...scanPolicyShape,
  vanished_devices: scanPolicyShape.vanished_devices.meta({
    description:
      'A device missing from a complete scan, once Kandji answers 404 for it: `not-compliant` (default) sends compliant → not-compliant for a device last known compliant and keeps it as not-compliant for 90 days, so that its status is sent if it is listed again; `forget` drops it silently; `keep` keeps its last state.',
  }),
  max_retry_wait: maxRetryWaitField,
});

export type KandjiConfig = z.output<typeof configSchema>;
