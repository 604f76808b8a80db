import { duration, mappingRulesSchema, secret, z } from '../../core/plugin-api/index.ts';

const bearerAuth = z.strictObject({
  type: z.literal('bearer').meta({ description: 'Senders present a bearer token.' }),
  token: secret('Bearer token senders must present (Authorization: Bearer <token>).'),
  previous_token: secret('A second accepted token, for rotating `token` without downtime.').optional(),
});

const hmacAuth = z.strictObject({
  type: z.literal('hmac').meta({ description: 'Senders sign the raw request body with a shared key.' }),
  key: secret('Shared HMAC key the sender signs each request body with.'),
  header: z
    .string()
    .min(1)
    .default('x-signature')
    .meta({ description: 'Request header carrying the signature.' }),
  algorithm: z
    .enum(['sha256', 'sha1', 'sha512'])
    .default('sha256')
    .meta({ description: 'HMAC hash algorithm.' }),
  encoding: z.enum(['hex', 'base64']).default('hex').meta({ description: 'How the signature is encoded.' }),
  prefix: z
    .string()
    .default('')
    .meta({ description: 'Text before the signature in the header, e.g. "sha256=".' }),
  timestamp_header: z.string().min(1).optional().meta({
    description:
      'Request header carrying the time of sending in seconds since the epoch, e.g. "x-timestamp" (as ssf-bridge\'s webhook destination sends it). When set, the signature covers "<timestamp>.<raw body>" and a request further than timestamp_tolerance from the bridge\'s clock is refused, so a captured request cannot be replayed later. Default: the signature covers the raw body only.',
  }),
  timestamp_tolerance: duration(
    "With timestamp_header: how far the time of sending may be from the bridge's clock.",
    { min: 1_000, max: 3_600_000 },
  ).prefault('5m'),
});

export const configSchema = z.strictObject({
  auth: z
    .discriminatedUnion('type', [bearerAuth, hmacAuth])
    .meta({ description: 'How senders authenticate: a bearer token or an HMAC signature of the body.' }),
  records_field: z.string().min(1).optional().meta({
    description:
      'Top-level field of the body holding the list of records (e.g. "events"). Default: the body is one record, or an array of records.',
  }),
  max_records_per_request: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(1_000)
    .meta({ description: 'Largest number of records one request may carry; more is refused with 400.' }),
  rules: mappingRulesSchema,
});

export type GenericWebhookConfig = z.output<typeof configSchema>;
