import { checkProfileOptions, profileFields, z } from '../../core/plugin-api/index.ts';

export const configSchema = z
  .strictObject({
    audience: z
      .string()
      .min(1)
      .default('urn:ssf-bridge:log')
      .meta({ description: 'Audience (aud) of the SETs signed for this destination.' }),
    ...profileFields(
      'Target profile the SETs are shaped with: ssf-1.0, okta-itp, google-workspace, legacy-sse-caep.',
    ),
    format: z.enum(['decoded', 'compact']).default('decoded').meta({
      description: '`decoded`: one JSON line with the SET claims; `compact`: the signed JWT as is.',
    }),
  })
  .superRefine(checkProfileOptions);

export type LogConfig = z.output<typeof configSchema>;
