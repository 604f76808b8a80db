import { isIP } from 'node:net';
import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { vanishedLookupsField, vanishGuardShape } from '../_shared/mdm-mapping.ts';
import { vendorUrlField } from '../_shared/mdm-poller.ts';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** An IPv4/IPv6 address or a CIDR block such as 203.0.113.0/24 or 2001:db8::/32. */
function isNetwork(value: string): boolean {
  const [address, prefix, ...rest] = value.trim().split('/');
  if (rest.length > 0 || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

const webhookAuthSchema = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z
        .literal('basic')
        .meta({ description: 'Jamf Pro webhook authentication type "Basic Authentication".' }),
      username: z.string().min(1).meta({ description: 'Username entered in the Jamf Pro webhook.' }),
      password: secret('Password entered in the Jamf Pro webhook.'),
    }),
    z.strictObject({
      type: z
        .literal('header')
        .meta({ description: 'Jamf Pro webhook authentication type "Header Authentication".' }),
      name: z
        .string()
        .regex(HEADER_NAME, 'must be a valid HTTP header name')
        .meta({ description: 'Name of the header Jamf Pro sends, e.g. X-Webhook-Secret.' }),
      value: secret('Value of that header.'),
    }),
    z.strictObject({
      type: z
        .literal('none')
        .meta({ description: 'No authentication: allowed only together with allowed_networks.' }),
    }),
  ])
  .meta({ description: 'How Jamf Pro authenticates its webhook calls (Jamf does not sign webhooks).' });

export const configSchema = z
  .strictObject({
    url: vendorUrlField('Jamf Pro URL, e.g. https://acme.jamfcloud.com.'),
    client_id: z.string().min(1).optional().meta({
      description:
        'Client id of a Jamf Pro API client (Settings → API Roles and Clients; Jamf Pro 10.49 or later). Give it with client_secret, or give username and password instead.',
    }),
    client_secret: secret('Client secret of that API client.').optional(),
    username: z.string().min(1).optional().meta({
      description:
        'A Jamf Pro user account for the API, on servers without API clients (before 10.49) or where accounts are the rule: the connector buys bearer tokens with it at /api/v1/auth/token. Give it with password, instead of client_id and client_secret.',
    }),
    password: secret('Password of that account.').optional(),
    webhook_auth: webhookAuthSchema,
    allowed_networks: z
      .array(z.string().refine(isNetwork, 'must be an IP address or a CIDR block such as 203.0.113.0/24'))
      .default([])
      .meta({
        description:
          'Source networks webhook calls may come from (Jamf Cloud publishes its outbound addresses). Empty: any address.',
      }),
    non_compliant_groups: z
      .array(z.union([z.number().int().positive(), z.string().trim().min(1)]))
      .min(1, 'name at least one smart computer group')
      .meta({
        description:
          'Smart computer groups whose members are not compliant: numeric group ids, or exact group names.',
      }),
    check_in_lookup: z.boolean().default(true).meta({
      description:
        "On ComputerCheckIn, read the computer's group memberships to confirm its status. Off: check-ins are acknowledged and ignored (inventory and smart-group webhooks still count).",
    }),
    lookup_concurrency: z.number().int().min(1).max(10).default(4).meta({
      description:
        'Jamf Pro API requests in flight at once, for the lookups of a webhook and those of the computers missing from a reconciliation (Jamf Cloud throttles bursts).',
    }),
    reconcile: z
      .boolean()
      .default(true)
      .meta({ description: 'Periodically read the whole computer inventory to catch missed webhooks.' }),
    reconcile_interval: duration(undefined, { min: 1000 })
      .prefault('1h')
      .meta({ description: 'Time between two reconciliation scans.' }),
    page_size: z
      .number()
      .int()
      .min(1)
      .max(2000)
      .default(100)
      .meta({ description: 'Computers per page of the reconciliation scan.' }),
    first_sighting: z.enum(['baseline', 'emit']).default('baseline').meta({
      description:
        '`baseline` (default): the first status seen for a computer (from a check-in, an inventory report or the reconciliation), or for a mobile device first seen through MobileDeviceEnrolled, is recorded without an event. `emit`: it is sent, with the opposite status as previous_status. Smart-group webhooks and MobileDeviceUnEnrolled always report a change.',
    }),
    vanished_devices: z.enum(['not-compliant', 'forget', 'keep']).default('not-compliant').meta({
      description:
        'A computer missing from a complete reconciliation scan, once its own lookup (GET /api/v1/computers-inventory/{id}) answers 404: `not-compliant` (default) sends compliant → not-compliant for one last known compliant and keeps it as not-compliant, so that its status is sent if it comes back; `forget` drops it silently; `keep` keeps its last state (and nothing is looked up).',
    }),
    vanished_lookups_per_scan: vanishedLookupsField('GET /api/v1/computers-inventory/{id}', 'Computers'),
    ...vanishGuardShape,
    max_retry_wait: duration().prefault('2m').meta({
      description:
        'Longest total time one reconciliation scan waits on throttling and server errors before it gives up until the next one.',
    }),
  })
  .superRefine((config, ctx) => {
    const client = config.client_id !== undefined || config.client_secret !== undefined;
    const account = config.username !== undefined || config.password !== undefined;
    if (client && account) {
      ctx.addIssue({
        code: 'custom',
        path: ['username'],
        message:
          'sign in to the Jamf Pro API either as an API client (client_id, client_secret) or as an account (username, password), not both',
      });
    } else if (!account && (config.client_id === undefined || config.client_secret === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [config.client_id === undefined ? 'client_id' : 'client_secret'],
        message:
          'the Jamf Pro API needs client_id and client_secret (an API client), or username and password (an account)',
      });
    } else if (account && (config.username === undefined || config.password === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [config.username === undefined ? 'username' : 'password'],
        message: 'an account sign-in needs both username and password',
      });
    }
    if (config.webhook_auth.type === 'none' && config.allowed_networks.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['webhook_auth'],
        message:
          'webhooks without authentication are accepted only from allowed_networks; set allowed_networks or use basic or header authentication',
      });
    }
  });

export type JamfProConfig = z.output<typeof configSchema>;
