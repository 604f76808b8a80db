/**
 * The target-profile fields of a destination's config (`profile`, `profile_options`), for
 * outbound connectors and the transmitter's receivers alike: the profile must exist, and its
 * options, and the destination's `audience`, are checked against the profile when the config
 * loads, not at the first SET.
 */
import { z } from 'zod';
import { DEFAULT_PROFILE, PROFILE_NAMES, getProfile, refusedAudience } from '../ssf/profiles/index.ts';

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

/**
 * A superRefine step for a destination's profile: reports every problem of `profile_options`
 * under its path, and, at `audience`, an audience the profile refuses every SET for (a target
 * that takes one audience only, as Google does), rather than dead-lettering each SET. `audience`
 * is the one the SETs will carry: a config whose audience defaults to another field passes that.
 */
export function checkProfileOptions(
  config: {
    profile: string;
    profile_options?: Record<string, unknown> | undefined;
    audience?: string | string[] | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const profile = getProfile(config.profile);
  const options = profile.optionsSchema.safeParse(config.profile_options ?? {});
  if (!options.success) {
    for (const issue of options.error.issues) {
      ctx.addIssue({
        code: 'custom',
        path: ['profile_options', ...issue.path.map(String)],
        message: issue.message,
      });
    }
  }
  const refused = refusedAudience(profile, config.audience);
  if (refused !== undefined) {
    const { only, requested } = refused;
    ctx.addIssue({
      code: 'custom',
      path: ['audience'],
      message: `the ${profile.name} profile takes only the audience ${only}, not ${requested.join(', ')}: every SET would be refused; set audience to ${only}`,
    });
  }
}
