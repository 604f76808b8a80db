import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { scanPolicyShape, vanishedLookupsField, vanishGuardShape } from '../_shared/mdm-mapping.ts';
import { FAILURES_TO_STOP, maxRetryWaitField, vendorUrlField } from '../_shared/mdm-poller.ts';

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
  status_failures_to_stop: z.number().int().min(1).max(1_000).default(FAILURES_TO_STOP).meta({
    description:
      'Device status reads in a row that may fail (a server error after the retries, a timeout, another 4xx) before the scan stops reading statuses: the status endpoint is then taken as down or hanging for every device, and each further read would cost a request or a timeout. What was read is kept, the instance status becomes recoverable_error, and the next scan reads again, the devices not read first. Raise it if more devices than this keep failing while Kandji answers for the others.',
  }),
  include_library_items: z.boolean().default(true).meta({
    description:
      'Count library items in ERROR (failed installs, failed profiles) as failing checks, besides blueprint parameters.',
  }),
  ...scanPolicyShape,
  vanished_devices: scanPolicyShape.vanished_devices.meta({
    description:
      'A device missing from a complete scan, once its own lookup (GET /api/v1/devices/{device_id}) answers 404: `not-compliant` (default) sends compliant → not-compliant for a device last known compliant and keeps it as not-compliant for 90 days, so that its status is sent if it is listed again; `forget` drops it silently; `keep` keeps its last state.',
  }),
  vanished_lookups_per_scan: vanishedLookupsField('GET /api/v1/devices/{device_id}, one request each'),
  ...vanishGuardShape,
  max_retry_wait: maxRetryWaitField,
});

export type KandjiConfig = z.output<typeof configSchema>;
