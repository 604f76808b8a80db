import { z } from 'zod';
import { secret } from '../plugin-api/secret.ts';

export const ADMIN_ROLES = ['read', 'write'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

const adminTokenSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9._@-]{1,64}$/, 'letters, digits and . _ @ - only (at most 64)')
    .meta({ description: 'Who holds the token; recorded in the audit log for every write action.' }),
  role: z.enum(ADMIN_ROLES).meta({
    description: '`read` sees everything; `write` may also replay and purge, change streams and rotate keys.',
  }),
  token: secret('The bearer token. Use at least 32 random characters.').refine(
    (value) => value.reveal().length >= 16,
    'must be at least 16 characters',
  ),
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
