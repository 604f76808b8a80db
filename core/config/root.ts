import { z } from 'zod';
import { adminConfigSchema } from '../admin/config.ts';
import { deliveryConfigSchema } from '../delivery/config.ts';
import { routesConfigSchema, subjectsConfigSchema } from '../pipeline/config.ts';
import { keysConfigSchema } from '../ssf/keys/config.ts';
import { storageConfigSchema } from '../storage/config.ts';
import { transmitterConfigSchema } from '../transmitter/config.ts';
import { foundationShape } from './schema.ts';

/** The whole configuration file. Every block is strict: unknown keys are errors. */
export const rootConfigSchema = z
  .strictObject({
    ...foundationShape,
    storage: storageConfigSchema,
    keys: keysConfigSchema.prefault({}),
    delivery: deliveryConfigSchema,
    routes: routesConfigSchema,
    subjects: subjectsConfigSchema,
    transmitter: transmitterConfigSchema,
    admin: adminConfigSchema,
  })
  .superRefine((root, ctx) => {
    // Instances on one database answer for one issuer, so they must sign with the same keys and
    // serve the same JWKS: keys generated in each instance's data directory would differ.
    const keys = root.keys;
    if (root.storage.driver === 'postgres' && !keys.files && !keys.secrets && !keys.single_instance) {
      ctx.addIssue({
        code: 'custom',
        path: ['keys'],
        message:
          "on PostgreSQL storage, give the signing keys through keys.files or keys.secrets, the same for every instance (see docs/scaling.md): keys generated in each instance's data directory differ, so a receiver could not verify one instance's SETs with another's JWKS. If this bridge is the only instance using the database, set keys.single_instance: true",
      });
    }
    // Instances on one database answer for one issuer: a nonce one of them hands out must be taken
    // by every other, so they derive them from one configured secret.
    const oauth = root.transmitter.oauth;
    if (root.storage.driver === 'postgres' && oauth?.dpop_nonce && oauth.dpop_nonce_secret === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['transmitter', 'oauth', 'dpop_nonce_secret'],
        message:
          'is required with dpop_nonce on PostgreSQL storage: every instance must take the nonces the others hand out, so give them all the same secret',
      });
    }
  });

export type RootConfigInput = z.input<typeof rootConfigSchema>;
export type RootConfig = z.output<typeof rootConfigSchema>;
