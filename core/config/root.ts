import { z } from 'zod';
import { foundationShape } from './schema.ts';

/** The whole configuration file. Every block is strict: unknown keys are errors. */
export const rootConfigSchema = z.strictObject({
  ...foundationShape,
});

export type RootConfigInput = z.input<typeof rootConfigSchema>;
export type RootConfig = z.output<typeof rootConfigSchema>;
