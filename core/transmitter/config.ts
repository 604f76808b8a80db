/**
 * The `transmitter:` block of the root configuration: who may manage streams (static bearer
 * tokens and OAuth 2.0 access tokens), the stream policy, poll and push limits, the SSRF policy
 * for receiver-supplied push URLs, and streams provisioned from the configuration.
 */
import { z } from 'zod';
import { duration, secret } from '../plugin-api/index.ts';
import { ssrfPolicySchema } from '../http/ssrf.ts';
import { VERIFICATION_ALGORITHMS } from '../ssf/algorithms.ts';
import { findEventType } from '../ssf/events/catalog.ts';
import { checkProfileOptions, profileFields } from '../plugin-api/profiles.ts';

export const SCOPE_READ = 'ssf.read';
export const SCOPE_MANAGE = 'ssf.manage';
export const PUSH_METHOD = 'urn:ietf:rfc:8935';
export const POLL_METHOD = 'urn:ietf:rfc:8936';

/** RFC 3986 §2.3 unreserved characters: safe in URLs and query strings without escaping. */
export const STREAM_ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;
const CLIENT_ID_PATTERN = /^[\x21-\x7e]{1,255}$/;

const scopeSchema = z.enum([SCOPE_READ, SCOPE_MANAGE]);
const clientId = z.string().regex(CLIENT_ID_PATTERN, 'must be 1–255 visible ASCII characters without spaces');
const audienceSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

const receiverSchema = z
  .strictObject({
    client_id: clientId.meta({ description: 'Identifies the receiver; every stream belongs to one client.' }),
    token: secret(
      'Static bearer token the receiver sends as "Authorization: Bearer <token>". Use at least 32 random characters.',
    )
      .refine((value) => value.reveal().length >= 16, 'must be at least 16 characters')
      .optional()
      .meta({ description: 'Omit for clients that authenticate with OAuth access tokens only.' }),
    scopes: z.array(scopeSchema).min(1).default([SCOPE_READ, SCOPE_MANAGE]).meta({
      description: 'Scopes of the static token: ssf.read (read streams, poll) and ssf.manage (change them).',
    }),
    audience: audienceSchema
      .optional()
      .meta({ description: "SET aud of this client's streams. Defaults to the client id." }),
    ...profileFields(
      "Target profile this client's SETs are shaped with: ssf-1.0, or legacy-sse-caep for receivers of the pre-SSF 1.0 CAEP shape (Apple Business Manager, Apple School Manager). Its streams offer only the event types the profile takes.",
    ),
  })
  // The client's streams carry its audience, or else its client id (auth.ts): that is the one checked.
  .superRefine((receiver, ctx) =>
    checkProfileOptions({ ...receiver, audience: receiver.audience ?? receiver.client_id }, ctx),
  );

const oauthSchema = z
  .strictObject({
    issuer: z
      .string()
      .min(1)
      .meta({ description: 'Expected iss of access tokens (the authorization server).' }),
    audience: audienceSchema.meta({
      description: 'Expected aud of access tokens (this bridge as a resource server).',
    }),
    jwks_uri: z.url().meta({ description: "The authorization server's JWKS." }),
    client_id_claim: z
      .string()
      .min(1)
      .default('client_id')
      .meta({ description: 'Claim naming the client; azp and then sub are used when it is absent.' }),
    algorithms: z.array(z.enum(VERIFICATION_ALGORITHMS)).min(1).default(['RS256', 'ES256', 'PS256', 'EdDSA']),
    clock_tolerance: duration('Clock skew tolerated on exp, nbf and iat.').prefault('30s'),
    jwks_cache: duration('How long the fetched JWKS is used before it is fetched again.').prefault('10m'),
    dpop: z.enum(['allowed', 'required']).default('allowed').meta({
      description:
        'DPoP-bound tokens (RFC 9449) are always taken with the DPoP scheme and a proof, never as bearer tokens; `required` refuses OAuth tokens that are not bound.',
    }),
    dpop_nonce: z.boolean().default(false).meta({
      description:
        'Ask for a nonce of this bridge in every DPoP proof (RFC 9449 §9), so that a proof made ahead of time is of no use: a proof without a current one is refused with `use_dpop_nonce` and the nonce in a `DPoP-Nonce` header, which also comes with every answer to a DPoP request. A nonce is current for 5 to 10 minutes.',
    }),
    dpop_nonce_secret: secret(
      'Key the nonces are derived from (at least 32 characters). Every instance sharing a PostgreSQL database must have the same one, and it is required there; a single instance without one makes its own at start.',
    )
      .refine((value) => value.reveal().length >= 32, 'must be at least 32 characters')
      .optional(),
  })
  .superRefine((oauth, ctx) => {
    if (oauth.dpop_nonce_secret !== undefined && !oauth.dpop_nonce) {
      ctx.addIssue({
        code: 'custom',
        path: ['dpop_nonce_secret'],
        message: 'is set but dpop_nonce is false: set dpop_nonce: true to ask for nonces',
      });
    }
  });

const provisionedDeliverySchema = z.discriminatedUnion('method', [
  z.strictObject({
    method: z.literal(PUSH_METHOD),
    endpoint_url: z.url(),
    authorization_header: secret('Sent verbatim as the Authorization header of every push.').optional(),
  }),
  z.strictObject({ method: z.literal(POLL_METHOD) }),
]);

const provisionedStreamSchema = z.strictObject({
  stream_id: z
    .string()
    .regex(STREAM_ID_PATTERN, 'must be 1–128 of A-Z a-z 0-9 . _ ~ -')
    .meta({ description: 'Fixed stream id; the receiver reads and polls the stream under it.' }),
  client_id: clientId,
  events_requested: z
    .array(
      z
        .string()
        .min(1)
        .transform((name, ctx) => {
          // Streams carry URIs (SSF 1.0 §8.1.1): a short name is resolved here, once.
          const uri = findEventType(name)?.uri;
          if (uri) return uri;
          ctx.addIssue({ code: 'custom', message: `unknown event type "${name}"` });
          return z.NEVER;
        }),
    )
    .default([])
    .transform((uris) => [...new Set(uris)])
    .meta({
      description: 'Event types the stream carries: URIs or short names such as `caep.session-revoked`.',
    }),
  delivery: provisionedDeliverySchema.prefault({ method: POLL_METHOD }),
  description: z.string().optional(),
  subjects: z
    .array(z.record(z.string(), z.unknown()))
    .default([])
    .meta({ description: 'Subject identifiers added to the stream (RFC 9493 / SSF §3).' }),
});

export const transmitterConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: 'Serve the SSF 1.0 transmitter endpoints.' }),
    receivers: z.array(receiverSchema).default([]),
    oauth: oauthSchema
      .optional()
      .meta({ description: 'Accept OAuth 2.0 JWT access tokens issued by this authorization server.' }),
    streams: z
      .strictObject({
        per_receiver: z
          .enum(['one', 'many'])
          .default('one')
          .meta({ description: '`one`: a second create by the same client answers 409 (SSF §8.1.1.1).' }),
        default_subjects: z.enum(['ALL', 'NONE']).default('ALL').meta({
          description: 'ALL: streams get events about every subject until removed; NONE: only added ones.',
        }),
        events_supported: z.array(z.string().min(1)).min(1).optional().meta({
          description: 'Event types offered to receivers (URIs or short names). Default: CAEP and RISC.',
        }),
        min_verification_interval: duration(
          'Shortest time between two verification requests of a stream.',
        ).prefault('10s'),
        verify_on_create: z.boolean().default(false).meta({
          description: 'Send an unsolicited verification event (no state) right after a stream is created.',
        }),
        inactivity_timeout: duration('Pause or disable a stream nobody used for this long.').optional(),
        inactivity_action: z.enum(['pause', 'disable']).default('pause'),
        verification_failure_action: z
          .enum(['none', 'pause', 'disable'])
          .default('none')
          .meta({ description: 'What to do with a stream whose receiver rejected a verification event.' }),
        unverified_subjects: z.enum(['accept', 'ignore']).default('accept').meta({
          description: 'Subjects added with verified=false: add them, or acknowledge and ignore them.',
        }),
        max_subjects: z.int().min(1).default(100_000).meta({ description: 'Subjects one stream may add.' }),
        paused_hold_limit: z.int().min(0).default(10_000).meta({
          description: 'Events held for a paused stream; later events are dropped until it resumes.',
        }),
      })
      .prefault({}),
    poll: z
      .strictObject({
        max_events: z
          .int()
          .min(1)
          .max(10_000)
          .default(1000)
          .meta({ description: 'Most SETs one poll returns.' }),
        default_max_events: z
          .int()
          .min(1)
          .default(100)
          .meta({ description: 'SETs returned when maxEvents is absent.' }),
        long_poll_max_wait: duration(
          'Longest a long poll is held open (keep below client timeouts).',
        ).prefault('20s'),
        store_check_interval: duration(
          'How often a waiting long poll looks for SETs queued by other instances.',
        ).prefault('1s'),
        redeliver_after: duration(
          'An unacknowledged SET is returned again by polls after this long.',
        ).prefault('0s'),
        max_queue: z
          .int()
          .min(1)
          .default(100_000)
          .meta({ description: 'Unacknowledged SETs per stream before new ones wait in the outbox.' }),
      })
      .prefault({}),
    push: z
      .strictObject({
        timeout: duration('Longest one push may take.').prefault('10s'),
        invalid_key_retries: z.int().min(0).default(3).meta({
          description: 'Retries after a receiver answers invalid_key (it may refresh our JWKS meanwhile).',
        }),
        invalid_key_retry_after: duration('Delay before retrying a SET refused with invalid_key.').prefault(
          '1m',
        ),
        max_sockets: z
          .int()
          .min(1)
          .max(1024)
          .default(64)
          .meta({ description: 'Open connections per receiver host.' }),
      })
      .prefault({}),
    ssrf: ssrfPolicySchema.prefault({}).meta({
      description: 'Which receiver push URLs may be reached (https only unless a host is allowed).',
    }),
    provisioned_streams: z.array(provisionedStreamSchema).default([]),
    sync_interval: duration('How often streams changed by other instances are picked up.').prefault('1s'),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    const tokens = new Map<string, string>();
    config.receivers.forEach((r, i) => {
      if (seen.has(r.client_id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['receivers', i, 'client_id'],
          message: `client ${r.client_id} is listed twice`,
        });
      }
      seen.add(r.client_id);
      // A token names its client: two clients with one token could act as each other.
      const token = r.token?.reveal();
      if (token === undefined) return;
      const owner = tokens.get(token);
      if (owner !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['receivers', i, 'token'],
          message: `the same token as client ${owner}: every receiver needs a token of its own`,
        });
      } else tokens.set(token, r.client_id);
    });
    const ids = new Set<string>();
    config.provisioned_streams.forEach((s, i) => {
      if (ids.has(s.stream_id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['provisioned_streams', i, 'stream_id'],
          message: 'stream ids must be unique',
        });
      }
      ids.add(s.stream_id);
    });
    if (config.poll.default_max_events > config.poll.max_events) {
      ctx.addIssue({
        code: 'custom',
        path: ['poll', 'default_max_events'],
        message: 'must not exceed poll.max_events',
      });
    }
  })
  .prefault({});

export type TransmitterConfig = z.output<typeof transmitterConfigSchema>;
export type TransmitterConfigInput = z.input<typeof transmitterConfigSchema>;

/** The receiver of the quickstart (no config file, loopback only); documented in docs/transmitter.md. */
export const QUICKSTART_CLIENT_ID = 'quickstart';
/** The same documented token the quickstart's events API takes, so one token does everything. */
export const QUICKSTART_TOKEN = 'quickstart-token';

/**
 * The transmitter block of the quickstart: one receiver with the documented token (or the one
 * given) and push allowed to loopback receivers over http. Only for a bridge on loopback.
 */
export function quickstartTransmitterConfig(token: string = QUICKSTART_TOKEN): TransmitterConfigInput {
  return {
    receivers: [{ client_id: QUICKSTART_CLIENT_ID, token }],
    streams: { per_receiver: 'many' },
    ssrf: {
      allow_http_hosts: ['127.0.0.1', 'localhost', '::1'],
      allow_hosts: ['localhost'],
      allow_cidrs: ['127.0.0.0/8', '::1/128'],
    },
  };
}
