import { z } from 'zod';
import { adminConfigSchema } from '../admin/config.ts';
import { deliveryConfigSchema } from '../delivery/config.ts';
import { routesConfigSchema, subjectsConfigSchema } from '../pipeline/config.ts';
import { keysConfigSchema } from '../ssf/keys/config.ts';
import { storageConfigSchema } from '../storage/config.ts';
import { transmitterConfigSchema } from '../transmitter/config.ts';
import { foundationShape } from './schema.ts';

/** The whole configuration file. Every block is strict: unknown keys are errors. */
export const rootConfigSchema = z.strictObject({
  ...foundationShape,
  storage: storageConfigSchema,
  keys: keysConfigSchema.prefault({}),
  delivery: deliveryConfigSchema,
  routes: routesConfigSchema,
  subjects: subjectsConfigSchema,
  transmitter: transmitterConfigSchema,
  admin: adminConfigSchema,
});

export type RootConfigInput = z.input<typeof rootConfigSchema>;
export type RootConfig = z.output<typeof rootConfigSchema>;
