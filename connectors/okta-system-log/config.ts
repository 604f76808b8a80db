import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { oktaOrgUrl } from '../_shared/outbound-config.ts';

const sswsAuth = z.strictObject({
  type: z.literal('ssws').meta({ description: 'An Okta API token (Authorization: SSWS <token>).' }),
  token: secret('Okta API token of an administrator allowed to read the System Log.'),
});

const oauthAuth = z.strictObject({
  type: z.literal('oauth').meta({
    description:
      'An Okta API service app with the okta.logs.read scope (and okta.users.read with identifier_changes).',
  }),
  client_id: z.string().min(1).meta({ description: 'Client id of the API service app.' }),
  private_key: secret('Private key of the service app (PKCS#8 PEM or a private JWK as JSON).'),
  key_id: z.string().min(1).optional().meta({ description: 'Key id (kid) registered with the service app.' }),
});

export const configSchema = z.strictObject({
  // The API token or signed client assertion goes to it with every read: https, and the org's own
  // origin (iss_sub subjects name it as their issuer).
  org_url: oktaOrgUrl('Your Okta org, e.g. https://acme.okta.com.'),
  auth: z
    .discriminatedUnion('type', [sswsAuth, oauthAuth])
    .meta({ description: 'How to authenticate to the System Log API.' }),
  poll_interval: duration('How often to read new System Log events.', { min: 100 }).prefault('60s'),
  initial_lookback: duration('How far back the first run reads.').prefault('1h'),
  page_size: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(1000)
    .meta({ description: 'Events per page (Okta allows up to 1000).' }),
  max_pages_per_run: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(20)
    .meta({ description: 'Pages read in one run; the next run continues from the cursor.' }),
  rate_limit_reserve: z.number().int().min(0).default(5).meta({
    description:
      'Requests of the rate-limit window left to other Okta clients: a run stops when X-Rate-Limit-Remaining falls to this and resumes after X-Rate-Limit-Reset.',
  }),
  sign_outs: z.boolean().default(true).meta({
    description:
      'Emit caep.session-revoked when a user signs out of Okta (user.session.end) or an administrator clears their sessions (user.session.clear).',
  }),
  identifier_changes: z.boolean().default(false).meta({
    description:
      "Emit RISC identifier-changed when a user's login or primary email changes (user.account.update_profile). Okta logs which attributes changed, not their values: the connector reads the user (GET /api/v1/users/{id}; the OAuth app then also needs okta.users.read) and compares with the login and email it remembered. A change whose old value it never saw is not emitted.",
  }),
  identifier_memory: z.number().int().min(1).max(100_000).default(5000).meta({
    description:
      'Users whose last-seen login and email are remembered (saved with the cursor) for identifier_changes; beyond it the least recently seen are forgotten.',
  }),
  filter: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'System Log filter expression, e.g. eventType sw "user.".' }),
});

export type OktaSystemLogConfig = z.output<typeof configSchema>;

/** An instant as Okta writes `published` and as the checkpoint keeps it. */
export const instantSchema = z.iso.datetime({ offset: true });

/** A user's login and primary email as last seen, and when (an event's published, or a read). */
const rememberedSchema = z.strictObject({
  login: z.string().min(1).optional(),
  email: z.string().min(1).optional(),
  at: instantSchema,
});

/** An update_profile that may have changed a login or email, waiting for the user's profile. */
const awaitedSchema = z.strictObject({
  uuid: z.string().min(1),
  published: instantSchema,
});

/** The query a System Log cursor was built from: Okta's next links carry it unchanged. */
const querySchema = z.strictObject({
  limit: z.number().int().min(1),
  filter: z.string().min(1).optional(),
});

/**
 * The checkpoint. `next` is Okta's polling cursor and `query` what it was built from. `since` and
 * `seen` are a point in the log: the newest event emitted and all emitted at that instant
 * (`since` is inclusive). With `next` they are where reading restarts when page_size or filter
 * changed; without it, where the next run reads from (the first run's start, or a page left
 * half-read when the rate-limit window ran out). With identifier_changes: the users' remembered
 * logins and emails (by Okta user id), and the profile updates awaiting the user's profile.
 */
export const stateSchema = z.strictObject({
  next: z.string().min(1).optional(),
  query: querySchema.optional(),
  since: instantSchema.optional(),
  seen: z.array(z.string().min(1)).optional(),
  users: z.record(z.string(), rememberedSchema).optional(),
  awaiting: z.record(z.string(), awaitedSchema).optional(),
});

export type OktaSystemLogState = z.output<typeof stateSchema>;
export type LogQuery = z.output<typeof querySchema>;

/** What of a checkpoint that does not parse as a whole still does, and what was left out. */
export interface SalvagedState {
  state: OktaSystemLogState;
  /** Paths of what was left out, e.g. `seen[0]`, `users.00u1`, `extra`. */
  dropped: string[];
}

/** The entries of a record that parse with `schema`; the others are named in `dropped`. */
function salvageRecord<T>(
  value: unknown,
  schema: z.ZodType<T>,
  path: string,
  dropped: string[],
): Record<string, T> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    dropped.push(path);
    return undefined;
  }
  const kept: Record<string, T> = {};
  for (const [key, entry] of Object.entries(value)) {
    const parsed = schema.safeParse(entry);
    if (parsed.success) kept[key] = parsed.data;
    else dropped.push(`${path}.${key}`);
  }
  return Object.keys(kept).length > 0 ? kept : undefined;
}

/**
 * A checkpoint that does not parse (damaged, or written by another version), field by field: each
 * field that parses is kept, `seen`, `users` and `awaiting` entry by entry. Where reading resumes
 * (`next`, `since`) is worth more than the rest: without it a run could only start over.
 */
export function salvageState(raw: unknown): SalvagedState {
  const dropped: string[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { state: {}, dropped: ['cursor'] };
  const fields = raw as Record<string, unknown>;
  const state: OktaSystemLogState = {};
  const { shape } = stateSchema;
  for (const key of Object.keys(fields)) {
    if (fields[key] === undefined) continue;
    if (!Object.hasOwn(shape, key)) {
      dropped.push(key);
      continue;
    }
    if (key === 'seen') {
      const seen = Array.isArray(fields.seen) ? fields.seen : [];
      if (!Array.isArray(fields.seen)) dropped.push('seen');
      seen.forEach((uuid, i) => {
        if (typeof uuid === 'string' && uuid.length > 0) (state.seen ??= []).push(uuid);
        else dropped.push(`seen[${i}]`);
      });
    } else if (key === 'users') {
      const users = salvageRecord(fields.users, rememberedSchema, 'users', dropped);
      if (users) state.users = users;
    } else if (key === 'awaiting') {
      const awaiting = salvageRecord(fields.awaiting, awaitedSchema, 'awaiting', dropped);
      if (awaiting) state.awaiting = awaiting;
    } else {
      const parsed = shape[key as 'next' | 'query' | 'since'].safeParse(fields[key]);
      if (parsed.success) Object.assign(state, { [key]: parsed.data });
      else dropped.push(key);
    }
  }
  return { state, dropped };
}
