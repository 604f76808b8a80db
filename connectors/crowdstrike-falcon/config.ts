import { duration, secret, z } from '../../core/plugin-api/index.ts';
import {
  apiBaseUrl,
  mappingShape,
  scoreThresholdsSchema,
  subjectsSchema,
  webhookSchema,
} from '../_shared/edr-config.ts';

const legacyLevel = (description: string, fallback: number) =>
  z.number().int().min(1).max(5).default(fallback).meta({ description });

const mappingSchema = z
  .strictObject({
    ...mappingShape,
    score_thresholds: scoreThresholdsSchema,
    legacy_severity_thresholds: z
      .strictObject({
        medium: legacyLevel('Lowest legacy severity (1–5) that counts as MEDIUM.', 3),
        high: legacyLevel('Lowest legacy severity (1–5) that counts as HIGH.', 4),
        critical: legacyLevel('Lowest legacy severity (1–5) that counts as critical.', 5),
      })
      .prefault({})
      .refine((t) => t.medium <= t.high && t.high <= t.critical, {
        message: 'thresholds must rise: medium ≤ high ≤ critical',
      })
      .meta({
        description:
          'Bands for the 1–5 `Severity` of legacy DetectionSummaryEvent and Identity Protection detections, used when no SeverityName is given.',
      }),
    credential_theft: z.boolean().default(true).meta({
      description:
        'Identity Protection detections in the Credential Access tactic (TA0006) produce `risc.credential-compromise` (credential_type password) plus `caep.risk-level-change` HIGH.',
    }),
    false_positive_tags: z.array(z.string().min(1)).default(['false_positive', 'false positive']).meta({
      description:
        'Tags (case-insensitive) that mark a closed alert as a false positive. An alert whose status is `false_positive` counts too.',
    }),
  })
  .prefault({})
  .meta({ description: 'Which detections produce which events.' });

export const configSchema = z
  .strictObject({
    mode: z.enum(['alerts', 'stream', 'webhook']).default('alerts').meta({
      description:
        '`alerts`: poll the Alerts API v2. `stream`: read the Event Streams datafeed. `webhook`: only accept records a Falcon Fusion workflow posts to POST /ingest/<instance-id> (the other modes accept them too when `webhook` is set).',
    }),
    base_url: apiBaseUrl(
      'API base URL of your Falcon cloud: https://api.crowdstrike.com (us-1), https://api.us-2.crowdstrike.com, https://api.eu-1.crowdstrike.com, https://api.laggar.gcw.crowdstrike.com (us-gov-1).',
      'https://api.crowdstrike.com',
    ),
    client_id: z.string().min(1).optional().meta({ description: 'API client id (modes alerts and stream).' }),
    client_secret: secret('API client secret (modes alerts and stream).').optional(),
    member_cid: z
      .string()
      .regex(/^[0-9a-fA-F]{32}$/, 'must be a 32-character CID')
      .optional()
      .meta({ description: 'Child CID to act on, for Flight Control (MSSP) parent API clients.' }),
    request_timeout: duration('Deadline of one API request.', { min: 100, max: 600_000 }).default(30_000),
    alerts: z
      .strictObject({
        poll_interval: duration('How often the Alerts API is polled.', { min: 100 }).default(60_000),
        page_size: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(500)
          .meta({ description: 'Alerts per request (the API allows up to 1000).' }),
        overlap: duration(
          'How far behind the last updated_timestamp each poll starts again, to catch late-indexed alerts; repeats are skipped.',
        ).default(300_000),
        initial_lookback: duration('How far back the first poll of a new instance reads.').default(3_600_000),
        max_pages_per_run: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(20)
          .meta({ description: 'Pages read in one poll; a larger backlog continues in the next poll.' }),
        filter: z.string().min(1).optional().meta({
          description:
            "Extra FQL ANDed to the time filter, e.g. product:['epp','idp'] to read only those products.",
        }),
      })
      .prefault({})
      .meta({ description: 'Mode `alerts`.' }),
    stream: z
      .strictObject({
        app_id: z
          .string()
          .regex(/^[A-Za-z0-9]{1,32}$/, 'must be 1–32 letters or digits')
          .default('ssfbridge')
          .meta({
            description:
              'Names this consumer to the Event Streams API; keep it stable (and unique per consumer of the same API client).',
          }),
        batch_size: z
          .number()
          .int()
          .min(1)
          .max(5000)
          .default(200)
          .meta({ description: 'Stream records handed to the core (with their offset) in one transaction.' }),
        flush_interval: duration(
          'Longest time read records wait before they are handed to the core.',
        ).default(1000),
        refresh_margin: duration(
          'How long before the session interval ends the session is refreshed (at the latest halfway through it). A refresh that fails (429, 5xx, timeout) is tried again within this margin, with the reconnect backoff.',
        ).default(60_000),
        reconnect_initial_backoff: duration('First wait before reconnecting after an error.').default(1000),
        reconnect_max_backoff: duration('Longest wait between reconnection attempts.').default(120_000),
      })
      .prefault({})
      .meta({ description: 'Mode `stream`.' }),
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
    for (const key of ['client_id', 'client_secret'] as const) {
      if (config[key] === undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `mode ${config.mode} needs ${key}` });
      }
    }
  });

export type FalconConfig = z.output<typeof configSchema>;
export type FalconMappingConfig = FalconConfig['mapping'];
