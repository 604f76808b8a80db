import {
  duration,
  formatDuration,
  secret,
  ssrfPolicySchema,
  subjectIdentifierSchema,
  z,
} from '../../core/plugin-api/index.ts';
import { dpopSetting } from '../_shared/outbound-config.ts';

/**
 * How far the verifier lets a SET's iat stray from this clock either way (createSetVerifier's
 * default clock skew, which the connector keeps). A SET passes max_age until max_age plus this
 * after its iat, and its jti may be recorded as early as this before its iat.
 */
const IAT_SKEW_MS = 60_000;

/**
 * How much replay_window must exceed max_age: a jti is remembered for replay_window from when it
 * was recorded (at the earliest IAT_SKEW_MS before the iat), and a redelivery is young enough to
 * pass the age check until max_age + IAT_SKEW_MS after the iat. A window covering both refuses
 * every redelivery, as a replay or as too old; a shorter one leaves a gap in which a redelivered
 * SET is taken as new and its action runs again. Twice the skew, rounded up to 5 minutes so that
 * the edges (an expiry compared to the second, a redelivery at the very last instant) are covered.
 */
export const REPLAY_MARGIN_MS = Math.max(2 * IAT_SKEW_MS, 300_000);

const bearerAuth = z.strictObject({
  type: z.literal('bearer').meta({ description: 'A static bearer token issued by the transmitter.' }),
  token: secret('Bearer token for the management API (Authorization: Bearer <token>).'),
});

const oauthAuth = z.strictObject({
  type: z
    .literal('oauth2_client_credentials')
    .meta({ description: 'OAuth 2.0 client credentials: access tokens from an authorization server.' }),
  token_url: z.url().meta({ description: 'Token endpoint of the authorization server.' }),
  client_id: z.string().min(1).meta({ description: 'Client id registered with the authorization server.' }),
  client_secret: secret('Client secret registered with the authorization server.'),
  scope: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'Scopes to request, space-separated (e.g. "ssf.read ssf.manage").' }),
  audience: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'Audience parameter, for servers that need one.' }),
  client_auth: z
    .enum(['basic', 'body'])
    .default('basic')
    .meta({ description: 'Send the client credentials as Basic auth or as form fields.' }),
  dpop: dpopSetting(),
});

const pushDelivery = z.strictObject({
  method: z.literal('push').meta({ description: 'The transmitter pushes SETs to this bridge (RFC 8935).' }),
  endpoint_url: z.url().meta({
    description:
      'Public URL of this instance as the transmitter reaches it: <public base URL>/ingest/<instance-id>.',
  }),
  authorization_header: secret(
    'Authorization header value the transmitter must send with every push (e.g. "Bearer <random>"). It is given to the transmitter in the stream configuration; pushes without it are refused.',
  ),
});

const pollDelivery = z.strictObject({
  method: z.literal('poll').meta({ description: 'This bridge polls the transmitter for SETs (RFC 8936).' }),
  max_events: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .meta({ description: 'Most SETs asked for in one poll.' }),
  timeout: duration('Longest a long poll may stay open; keep it above the transmitter’s long-poll wait.', {
    min: 1000,
    max: 600_000,
  }).prefault('60s'),
  error_backoff: duration(
    'Pause after a failed poll before polling again (doubles up to 16 times).',
  ).prefault('1s'),
  poll_interval_when_empty: duration(
    'Shortest time from the start of a poll that brought no SETs (and no moreAvailable) to the next poll. A poll that brought SETs is followed at once, and so is a long poll the transmitter held this long; one answered sooner (a paused stream, a transmitter that ignores returnImmediately: false or holds long polls briefly) waits out the rest, so an idle stream is not polled in a busy loop.',
    { min: 10, max: 600_000 },
  ).prefault('5s'),
});

const settings = z.strictObject({
  issuer: z.url().meta({
    description:
      'Issuer of the upstream transmitter. Its metadata is read from /.well-known/ssf-configuration (with the issuer’s path appended after it) and must name exactly this issuer.',
  }),
  metadata_url: z.url().optional().meta({
    description:
      'Where the transmitter’s metadata is read when it is not at the standard location derived from the issuer. Its issuer must still equal `issuer`.',
  }),
  audience: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .optional()
    .meta({
      description:
        'Audience the SETs must carry. Default: the aud of the stream as the transmitter reports it.',
    }),
  auth: z
    .discriminatedUnion('type', [bearerAuth, oauthAuth])
    .meta({ description: 'How this bridge authenticates to the transmitter’s management API.' }),
  delivery: z
    .discriminatedUnion('method', [pushDelivery, pollDelivery])
    .meta({ description: 'How SETs reach this bridge: pushed to it, or polled by it.' }),
  stream_id: z.string().min(1).optional().meta({
    description:
      'Adopt this existing stream instead of creating one. Default: the stream this instance created earlier, or a new one.',
  }),
  events_requested: z.array(z.string().min(1)).default([]).meta({
    description:
      'Event type URIs to ask for when creating the stream; an adopted stream asking for others is updated to these. Empty: every CAEP, RISC and registered event type the bridge knows (SSF verification and stream-updated events come unasked).',
  }),
  description: z.string().min(1).optional().meta({
    description:
      'Description of the stream, shown by the transmitter; an adopted stream described otherwise is updated.',
  }),
  bridge_issuer: z.string().min(1).meta({
    description:
      'The issuer of this bridge’s own transmitter. SETs issued by it, or relayed by this bridge before, are never emitted again (echo suppression).',
  }),
  delete_stream_on_stop: z.boolean().default(false).meta({
    description:
      'Delete the stream at the transmitter when the instance stops, after acknowledging what it polled; the transmitter drops the SETs it still holds for it, and the next start creates a new stream. For short-lived receivers (a test run); not with several bridge instances sharing the stream.',
  }),
  stream_status: z.enum(['enabled', 'paused', 'disabled']).optional().meta({
    description:
      'Status the stream is set to at start (SSF 1.0 §8.1.2.2): paused has the transmitter hold its SETs, disabled has it drop them, enabled resumes delivery. Unset: the status is left to the transmitter.',
  }),
  subjects: z
    .strictObject({
      add: z.array(subjectIdentifierSchema).default([]).meta({
        description:
          'Subjects added to the stream at every start (SSF 1.0 §8.1.3.2, as verified): what a transmitter whose default_subjects is NONE sends events about.',
      }),
      remove: z.array(subjectIdentifierSchema).default([]).meta({
        description:
          'Subjects removed from the stream at every start (SSF 1.0 §8.1.3.3): the transmitter stops sending events about them. Events about them that still arrive are accepted.',
      }),
    })
    .prefault({})
    .meta({ description: 'Subjects this receiver adds to or removes from its stream.' }),
  verify_on_start: z
    .boolean()
    .default(true)
    .meta({ description: 'Request a verification event after the stream is created or adopted.' }),
  verification: z
    .strictObject({
      interval: duration(
        'Also request a verification event this often while the instance runs (SSF 1.0 §8.1.4.2), on the scheduler’s leader only and never sooner than the stream’s min_verification_interval. Unset: only at start (verify_on_start).',
        { min: 1000 },
      ).optional(),
      timeout: duration(
        'How long a requested verification event may take to arrive; past it the instance reports recoverable_error until one arrives. Shorter than interval.',
        { min: 100 },
      ).prefault('5m'),
    })
    .prefault({})
    .refine((v) => v.interval === undefined || v.timeout < v.interval, {
      message: 'verification.timeout must be shorter than verification.interval',
      path: ['timeout'],
    })
    .meta({ description: 'Verification events asked of the transmitter (SSF 1.0 §8.1.4).' }),
  max_age: duration(
    'Refuse SETs issued longer ago than this. It bounds replay protection, so it must be more than 0 and replay_window must cover it; a bridge down for longer refuses the transmitter’s backlog as too old.',
  )
    .refine((ms) => ms > 0, {
      message:
        'must be more than 0: with no age limit a SET redelivered after replay_window has forgotten its jti would be taken as new and its action run again; give the longest age you accept (e.g. 1d, or 7d to take a long backlog) and a replay_window covering it',
    })
    .prefault('1d'),
  replay_window: duration(
    `How long received jtis are remembered to refuse replays: at least max_age plus ${formatDuration(REPLAY_MARGIN_MS)} for clock skew. They are kept in the store, so a replay is refused after a restart and by every bridge instance sharing it.`,
  )
    .refine((ms) => ms > 0, {
      message:
        'must be more than 0: 0 turns replay protection off, and a redelivered SET would be acted on again',
    })
    .prefault('2d'),
  algorithms: z
    .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
    .min(1)
    .default(['RS256', 'ES256', 'PS256', 'EdDSA'])
    .meta({ description: 'Signature algorithms accepted; none and HMAC never are.' }),
  jwks_refresh_cooldown: duration(
    'Shortest time between two fetches of the transmitter’s JWKS caused by an unknown kid (a rotated key).',
  ).prefault('30s'),
  legacy_subjects: z.boolean().default(false).meta({
    description:
      'Accept SETs of transmitters written before SSF 1.0 (Google’s RISC, early CAEP) that name the subject inside the event, spelt with subject_type, instead of in sub_id.',
  }),
  honoured_subject_members: z.array(z.string().min(1)).default([]).meta({
    description:
      'Complex-subject members (e.g. tenant, session) that this bridge’s routes and destinations honour. SSF 1.0 §3.6: an event whose subject has a member the transmitter lists in critical_subject_members is discarded (not emitted, logged and counted as discarded) unless that member is listed here. Empty: every critical member discards the event, since destinations may take a subject without it as the whole user.',
  }),
  endpoint_origins: z.array(z.url()).default([]).meta({
    description:
      'Origins, besides the issuer’s, where the transmitter’s metadata may put its management endpoints and poll endpoint (e.g. https://risc.googleapis.com for Google). Management credentials are sent to no other origin.',
  }),
  // The SSRF policy for URLs taken from the transmitter (docs/http-client.md#ssrf-policy).
  ssrf: ssrfPolicySchema.prefault({}).meta({
    description:
      'Which URLs taken from the transmitter (metadata endpoints, jwks_uri, poll endpoint_url) may be reached: https only and public addresses only unless allowed here. The issuer’s own host is trusted whatever it resolves to, but plain http needs allow_http_hosts even there.',
  }),
  request_timeout: duration('Timeout of management API and JWKS requests.', {
    min: 100,
    max: 600_000,
  }).prefault('10s'),
});

/**
 * replay_window must cover max_age (REPLAY_MARGIN_MS says by how much): past the window a jti is
 * forgotten, and only the age check still stops a redelivery.
 */
export const configSchema = settings.superRefine((config, ctx) => {
  const needed = config.max_age + REPLAY_MARGIN_MS;
  if (config.max_age > 0 && config.replay_window > 0 && config.replay_window < needed) {
    ctx.addIssue({
      code: 'custom',
      path: ['replay_window'],
      message: `must cover max_age (${formatDuration(config.max_age)}) plus ${formatDuration(REPLAY_MARGIN_MS)} for clock skew, i.e. be at least ${formatDuration(needed)}: a SET redelivered after its jti is forgotten but still young enough for max_age would be taken as new and its action run again`,
    });
  }
});

export type SsfReceiverConfig = z.output<typeof configSchema>;
