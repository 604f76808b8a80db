/**
 * The target-profile fields of a destination's config (`profile`, `profile_options`), for
 * outbound connectors and the transmitter's receivers alike: the profile must exist, and its
 * options are checked by the profile's own schema when the config loads, not at the first SET.
 */
import { z } from 'zod';
import { DEFAULT_PROFILE, PROFILE_NAMES, getProfile } from '../ssf/profiles/index.ts';

/** `profile` (one of the known profiles) and `profile_options`, with a description of each. */
export function profileFields(profileDescription: string) {
  return {
    profile: z
      .enum(PROFILE_NAMES as [string, ...string[]])
      .default(DEFAULT_PROFILE)
      .meta({ description: profileDescription }),
    profile_options: z
      .record(z.string(), z.unknown())
      .optional()
      .meta({ description: 'Options of the profile (see the target profiles in docs/ssf.md).' }),
  };
}

/** A superRefine step: reports every problem of `profile_options` under its path. */
export function checkProfileOptions(
  config: { profile: string; profile_options?: Record<string, unknown> | undefined },
  ctx: z.RefinementCtx,
): void {
  const options = getProfile(config.profile).optionsSchema.safeParse(config.profile_options ?? {});
  if (options.success) return;
  for (const issue of options.error.issues) {
    ctx.addIssue({
      code: 'custom',
      path: ['profile_options', ...issue.path.map(String)],
      message: issue.message,
    });
  }
}
