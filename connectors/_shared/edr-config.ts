/**
 * Config blocks the EDR connectors (crowdstrike-falcon, microsoft-defender, sentinelone) share:
 * how a detection becomes a risk level and which subject it is sent about. Every threshold and
 * choice of the default mapping is here, so each instance can change it.
 */
import { secret, usableEmail, z, type InstanceReference } from '../../core/plugin-api/index.ts';

export const RISK_LEVELS = ['LOW', 'MEDIUM', 'HIGH'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

/** The shape of an address, for the JSON schema; `usableEmail` decides. */
const EMAIL_SHAPE = /^[^\s@\\]+@[^\s@\\]+\.[^\s@\\]+$/u;

/** An account name as an alias key: trimmed, Unicode NFC, lower-cased. */
export function aliasKey(value: string): string {
  return value.trim().normalize('NFC').toLowerCase();
}

/**
 * Whether a user may be named by `value`: an address the event catalog takes, with a dot in its
 * domain (`usableEmail`). Anything looser would let one record make the core refuse a whole batch.
 */
export function looksLikeEmail(value: string): boolean {
  return usableEmail(value) !== undefined;
}

export const subjectsSchema = z
  .strictObject({
    user_aliases: z
      .record(
        z.string().min(1),
        z
          .string()
          .regex(EMAIL_SHAPE, 'must be an e-mail address')
          .refine((email) => usableEmail(email) !== undefined, 'must be an e-mail address'),
      )
      .superRefine((aliases, ctx) => {
        // Names are compared case-insensitively: two spellings of one name would leave one of
        // them silently unused.
        const first = new Map<string, [string, string]>();
        for (const [account, email] of Object.entries(aliases)) {
          const key = aliasKey(account);
          const earlier = first.get(key);
          if (earlier === undefined) {
            first.set(key, [account, email]);
          } else if (earlier[1].trim().toLowerCase() !== email.trim().toLowerCase()) {
            ctx.addIssue({
              code: 'custom',
              path: [account],
              message: `${JSON.stringify(earlier[0])} and ${JSON.stringify(account)} are the same account name (names are compared case-insensitively) but map to different addresses (${earlier[1].trim()}, ${email.trim()}); keep one`,
            });
          }
        }
      })
      .default({})
      .transform((aliases) => {
        const out: Record<string, string> = {};
        for (const [account, email] of Object.entries(aliases)) out[aliasKey(account)] = email.trim();
        return out;
      })
      .meta({
        description:
          'Static alias map from the account names the vendor reports (`DOMAIN\\\\user`, `user@domain` or a bare `user`, compared case-insensitively) to the e-mail address the identity provider knows. Used when a record carries no user principal name. Two names that differ only in case must not map to different addresses.',
      }),
    include_device: z.boolean().default(true).meta({
      description:
        "Adds the vendor's device id to the subject as `{format: complex, user, device}`. Turn off for receivers that cannot match devices.",
    }),
    device_owners: z
      .array(z.string().min(1))
      .max(20)
      .default([])
      .refine((ids) => new Set(ids).size === ids.length, { message: 'names an instance twice' })
      .meta({
        description:
          "Ids of this bridge's MDM instances (jamf-pro, intune, kandji) whose device records name each device's assigned user. A record whose user neither its user principal name nor `user_aliases` resolves gets the user its device (looked up by host name and device id) is assigned to. Devices assigned to different users give no user: nothing is guessed. Empty (default): not looked up.",
      }),
    unresolved_user: z.enum(['skip', 'device']).default('skip').meta({
      description:
        '`skip` (default): a record whose user cannot be resolved produces no event and is counted as `subject_unresolved`. `device`: it produces a device-only event (principal DEVICE) when the record names a device.',
    }),
  })
  .prefault({})
  .meta({ description: 'How the subject of each event is resolved.' });

export type SubjectsConfig = z.output<typeof subjectsSchema>;

/** The MDM instances `subjects.device_owners` names, checked when the config loads. */
export function deviceOwnerReferences(config: { subjects: SubjectsConfig }): InstanceReference[] {
  return config.subjects.device_owners.map((instance, index) => ({
    path: ['subjects', 'device_owners', index],
    instance,
    needs: 'device-records',
  }));
}

const percent = (description: string, fallback: number) =>
  z.number().int().min(0).max(100).default(fallback).meta({ description });

export const scoreThresholdsSchema = z
  .strictObject({
    medium: percent('Lowest 0–100 severity that counts as MEDIUM (below it: LOW).', 40),
    high: percent('Lowest 0–100 severity that counts as HIGH.', 70),
    critical: percent(
      'Lowest 0–100 severity that counts as critical (HIGH, and eligible for session revocation).',
      90,
    ),
  })
  .prefault({})
  .refine((t) => t.medium <= t.high && t.high <= t.critical, {
    message: 'thresholds must rise: medium ≤ high ≤ critical',
  })
  .meta({ description: 'Bands for vendors that grade severity 0–100.' });

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function httpsUrl() {
  return z
    .url()
    .refine(
      (value) => {
        // Not a URL at all (e.g. no scheme): z.url() says so already.
        if (!URL.canParse(value)) return true;
        const parsed = new URL(value);
        return (
          parsed.protocol === 'https:' || (parsed.protocol === 'http:' && LOCAL_HOSTS.has(parsed.hostname))
        );
      },
      { message: 'must be an https URL' },
    )
    .transform((value) => value.replace(/\/+$/, ''));
}

/** An https URL (plain http only for the local machine) with a default, without a trailing slash. */
export function apiBaseUrl(description: string, fallback: string) {
  return httpsUrl().default(fallback).meta({ description });
}

/** An https URL (plain http only for the local machine), without a trailing slash. */
export function apiUrl(description: string) {
  return httpsUrl().meta({ description });
}

export const minLevelField = z.enum(['low', 'medium', 'high']).default('medium').meta({
  description:
    'Lowest risk level that produces an event. Detections below it are counted as ignored (`below_min_level`).',
});

export const containmentField = z.boolean().default(true).meta({
  description:
    'A critical detection on a host that is contained (network-isolated) also produces `caep.session-revoked` for the user, in the same transaction.',
});

export const downgradeField = z.boolean().default(true).meta({
  description:
    'A detection closed as a false positive produces `caep.risk-level-change` with current_level LOW and previous_level set to the level the detection had, when this instance raised the level for it (by poll, webhook or stream); a closure of a detection it never raised is ignored as `not_raised_here`. Sent once: later updates of the closed detection send nothing until it is raised again.',
});

export const downgradeResolvedField = z.boolean().default(false).meta({
  description:
    'A detection resolved (remediated, or closed as a true positive) also produces `caep.risk-level-change` with current_level LOW (when this instance raised the level for it), so the user leaves the high-risk state once the threat is handled. Off by default: a closed alert says the host was dealt with, not always the account.',
});

/** The mapping choices of the EDR connectors that can see host containment. */
export const mappingShape = {
  min_level: minLevelField,
  revoke_sessions_on_containment: containmentField,
  downgrade_on_false_positive: downgradeField,
  downgrade_on_resolved: downgradeResolvedField,
};

/** What the shared mapping reads of every EDR connector's `mapping` block. */
export interface MappingConfig {
  min_level: 'low' | 'medium' | 'high';
  downgrade_on_false_positive: boolean;
  downgrade_on_resolved: boolean;
}

/** The webhook shared secret: senders present it as `Authorization: Bearer <secret>` or in `secret_header`. */
export const webhookSchema = z
  .strictObject({
    secret: secret(
      'Shared secret the sender presents as `Authorization: Bearer <secret>` (or in `secret_header`). At least 16 characters, without whitespace (a Bearer token cannot carry it); only with `secret_header` may it hold spaces inside, never at either end.',
    ),
    secret_header: z
      .string()
      .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name')
      .optional()
      .meta({
        description:
          'A header that carries the secret as its whole value (e.g. `X-Webhook-Secret`), for senders that cannot set Authorization.',
      }),
    max_records_per_request: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(500)
      .meta({ description: 'Largest number of records one request may carry; more is refused with 400.' }),
  })
  .superRefine((w, ctx) => {
    const value = w.secret.reveal();
    if (value.length < 16) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'secret must be at least 16 characters' });
    }
    // The Bearer credential ends at the first whitespace, and HTTP drops it from both ends of a
    // header value: such a secret could never be presented, and every request would be refused.
    if (w.secret_header === undefined && /\s/u.test(value)) {
      ctx.addIssue({
        code: 'custom',
        path: ['secret'],
        message:
          'secret must not contain whitespace: it is presented as `Authorization: Bearer <secret>`, which cannot carry it (inner spaces work only with secret_header)',
      });
    } else if (value !== value.trim()) {
      ctx.addIssue({
        code: 'custom',
        path: ['secret'],
        message: 'secret must not begin or end with whitespace: HTTP drops it from header values',
      });
    }
  })
  .meta({
    description:
      'Accept records the vendor (a workflow, a notification, a playbook) posts to POST /ingest/<instance-id>, mapped like polled ones. Required in mode `webhook`; optional in the other modes.',
  });
