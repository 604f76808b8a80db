import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { apiUrl, mappingShape, subjectsSchema, webhookSchema } from '../_shared/edr-config.ts';

const level = (description: string, fallback: 'low' | 'medium' | 'high') =>
  z.enum(['low', 'medium', 'high']).default(fallback).meta({ description });

const mappingSchema = z
  .strictObject({
    ...mappingShape,
    levels: z
      .strictObject({
        malicious_active: level('Risk level of a malicious threat that is not mitigated.', 'high'),
        malicious_mitigated: level(
          'Risk level of a malicious threat that was mitigated or blocked.',
          'medium',
        ),
        suspicious_active: level('Risk level of a suspicious threat that is not mitigated.', 'medium'),
        suspicious_mitigated: level(
          'Risk level of a suspicious threat that was mitigated (below the default min_level, so no event).',
          'low',
        ),
      })
      .prefault({})
      .meta({ description: 'Risk level for each confidenceLevel × mitigation state.' }),
  })
  .prefault({})
  .meta({
    description:
      'Which threats produce which events. For revoke_sessions_on_containment, a malicious threat that is not mitigated counts as critical.',
  });

export const configSchema = z
  .strictObject({
    mode: z.enum(['poll', 'webhook']).default('poll').meta({
      description:
        '`poll`: read GET /web/api/v2.1/threats on a schedule. `webhook`: only accept threats posted to POST /ingest/<instance-id> (poll mode accepts them too when `webhook` is set).',
    }),
    console_url: apiUrl(
      'Your management console, e.g. https://usea1-acme.sentinelone.net (mode poll).',
    ).optional(),
    api_token: secret(
      'API token of a service user with the Viewer role on the sites or accounts to read; sent as `Authorization: ApiToken <token>` (mode poll).',
    ).optional(),
    site_ids: z
      .array(z.string().regex(/^\d+$/, 'must be a numeric site id'))
      .optional()
      .meta({ description: 'Only threats of these sites.' }),
    account_ids: z
      .array(z.string().regex(/^\d+$/, 'must be a numeric account id'))
      .optional()
      .meta({ description: 'Only threats of these accounts.' }),
    request_timeout: duration('Deadline of one API request.', { min: 100, max: 600_000 }).default(30_000),
    poll_interval: duration('How often threats are polled.', { min: 100 }).default(60_000),
    page_size: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(200)
      .meta({ description: 'Threats per request (limit).' }),
    overlap: duration(
      'How far behind the last updatedAt each poll starts again, to catch late updates; repeats are skipped.',
    ).default(300_000),
    initial_lookback: duration('How far back the first poll of a new instance reads.').default(3_600_000),
    max_pages_per_run: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(20)
      .meta({ description: 'Pages read in one poll; a larger backlog continues in the next poll.' }),
    webhook: webhookSchema.optional(),
    mapping: mappingSchema,
    subjects: subjectsSchema,
  })
  .superRefine((config, ctx) => {
    if (config.mode === 'webhook') {
      if (!config.webhook) {
        ctx.addIssue({ code: 'custom', path: ['webhook'], message: 'mode webhook needs webhook.secret' });
      }
      return;
    }
    for (const key of ['console_url', 'api_token'] as const) {
      if (config[key] === undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `mode poll needs ${key}` });
      }
    }
  });

export type SentinelOneConfig = z.output<typeof configSchema>;
export type SentinelOneMappingConfig = SentinelOneConfig['mapping'];
