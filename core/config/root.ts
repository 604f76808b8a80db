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
