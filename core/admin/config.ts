import { z } from 'zod';
import { secret } from '../plugin-api/secret.ts';

export const ADMIN_ROLES = ['read', 'write'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

/** A bearer token as RFC 6750 §2.1 spells it (b64token). */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

const adminTokenSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9._@-]{1,64}$/, 'letters, digits and . _ @ - only (at most 64)')
    .meta({ description: 'Who holds the token; recorded in the audit log for every write action.' }),
  role: z.enum(ADMIN_ROLES).meta({
    description: '`read` sees everything; `write` may also replay and purge, change streams and rotate keys.',
  }),
  token: secret('The bearer token. Use at least 32 random characters.').superRefine((value, ctx) => {
    const token = value.reveal();
    if (token.length < 16) ctx.addIssue({ code: 'custom', message: 'must be at least 16 characters' });
    // A token with whitespace could never authenticate (the header parser, auth.ts, ends a token
    // at the first), and clients send only b64token characters. The message names the rule, never
    // the character, which is part of the secret.
    if (!B64TOKEN.test(token)) {
      ctx.addIssue({
        code: 'custom',
        message: /\s/.test(token)
          ? 'holds a space, tab or line break, which a bearer token cannot carry: remove it (a ${file:} secret keeps everything but one final newline, so look for a trailing space or a second newline)'
          : 'may hold only letters, digits and - . _ ~ + / with = only at the end (RFC 6750 §2.1); e.g. openssl rand -base64 32',
      });
    }
  }),
});

/** The `admin:` block of the root config: tokens for the admin API and the console. */
export const adminConfigSchema = z
  .strictObject({
    tokens: z
      .array(adminTokenSchema)
      .default([])
      .meta({ description: 'Admin tokens. With none, the admin API answers 401 to every request.' })
      .refine(
        (tokens) => new Set(tokens.map((t) => t.name)).size === tokens.length,
        'token names must be unique',
      ),
  })
  .prefault({})
  .meta({ description: 'Admin API (`/admin/...`) and web console (`/console`).' });

export type AdminConfig = z.output<typeof adminConfigSchema>;
export type AdminConfigInput = z.input<typeof adminConfigSchema>;
