import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { backfillWindow, leaverPolicyShape } from '../_shared/hr-leaver.ts';

export const configSchema = z
  .strictObject({
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
    employee_lookup: z.enum(['api', 'webhook_only']).default('api').meta({
      description:
        '`api`: read each employee through the Public API with a service user after every delivery (what Bob advises); `webhook_only`: no service user, only what the delivery itself says (employee.left, employee.activated/joined, employee.deleted; see the connector docs for what is lost).',
    }),
    service_user_id: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Id of the Bob service user that reads employees (employee_lookup api).' }),
    service_user_token: secret('Token of the Bob service user (employee_lookup api).').optional(),
    api_base_url: z
      .url({ protocol: /^https?$/ })
      .default('https://api.hibob.com/v1')
      .meta({ description: 'Bob Public API base URL.' }),
    max_event_age: duration(
      'Webhook events whose triggeredAt is older than this (or as far in the future) are refused as replays.',
    ).prefault('24h'),
    garden_leave: z.enum(['leaver', 'ignore']).default('leaver').meta({
      description:
        'leaver: garden leave ends access when it begins. ignore: the employee keeps access until the termination date the record shows.',
    }),
    release_interval: duration('How often held (future-dated) terminations are checked.', {
      min: 1000,
    }).prefault('1m'),
    request_timeout: duration('Timeout of one request to the Bob API.', { min: 100, max: 600_000 }).prefault(
      '30s',
    ),
    ...leaverPolicyShape,
    backfill_window: backfillWindow(
      'Keeps old leavers quiet: an employee first seen in a delivery other than employee.left or employee.inactivated, whose record shows a termination that took effect before this window or one without a date, is recorded without events (logged, and counted as backfilled). employee.left and employee.inactivated announce a termination as it happens: sent however old its date.',
    ),
  })
  .superRefine((c, issues) => {
    const problem = (path: string, message: string) =>
      issues.addIssue({ code: 'custom', path: [path], message });
    const user = c.service_user_id !== undefined || c.service_user_token !== undefined;
    if (c.employee_lookup === 'api') {
      if (c.service_user_id === undefined || c.service_user_token === undefined) {
        problem(
          c.service_user_id === undefined ? 'service_user_id' : 'service_user_token',
          'employee_lookup api reads each employee through the Public API and needs service_user_id and service_user_token (a Bob service user); without one, set employee_lookup: webhook_only',
        );
      }
      return;
    }
    if (user) {
      problem(
        'employee_lookup',
        'employee_lookup webhook_only reads no employee from the API: remove service_user_id and service_user_token, or set employee_lookup: api to use them',
      );
    }
    if (c.subject_format === 'email') {
      problem(
        'subject_format',
        "employee_lookup webhook_only cannot name leavers by email: Bob's employee.left carries only the employee id, so events name the Bob id (subject_format: aliases); Okta ITP and other email-only receivers need employee_lookup: api",
      );
    }
    if (c.garden_leave === 'ignore') {
      problem(
        'garden_leave',
        'garden_leave: ignore needs employee_lookup api: Bob fires employee.left for garden leave and termination alike, and only the employee record tells them apart',
      );
    }
  });

export type HibobConfig = z.output<typeof configSchema>;
