import { z } from 'zod';
import { ConfigError } from '../../plugin-api/index.ts';
import { googleWorkspaceProfile } from './google-workspace.ts';
import { legacySseProfile } from './legacy-sse.ts';
import { oktaItpProfile } from './okta-itp.ts';
import { ssfProfile } from './ssf-1.0.ts';
import type { ProfileInput, ShapedEvent, TargetProfile } from './types.ts';

export const DEFAULT_PROFILE = 'ssf-1.0';

const PROFILES: ReadonlyMap<string, TargetProfile<unknown>> = new Map<string, TargetProfile<unknown>>(
  [ssfProfile, oktaItpProfile, googleWorkspaceProfile, legacySseProfile].map((p) => [p.name, p]),
);

/** Names of every profile, for config validation and help texts. */
export const PROFILE_NAMES = [...PROFILES.keys()];

export function listProfiles(): TargetProfile<unknown>[] {
  return [...PROFILES.values()];
}

export function getProfile(name: string = DEFAULT_PROFILE): TargetProfile<unknown> {
  const profile = PROFILES.get(name);
  if (!profile) {
    throw new ConfigError(`unknown target profile "${name}"; known: ${PROFILE_NAMES.join(', ')}`, {
      code: 'SSF_ERR_PROFILE_UNKNOWN',
    });
  }
  return profile;
}

// Destinations hand the same options object for every SET; parse each object once.
const parsedOptions = new WeakMap<object, Map<string, unknown>>();
const EMPTY: Record<string, never> = Object.freeze({});

/** Validates a destination's profile options; throws ConfigError naming every problem. */
export function parseProfileOptions(name: string, options: unknown = EMPTY): unknown {
  const profile = getProfile(name);
  const cacheable = typeof options === 'object' && options !== null;
  const cached = cacheable ? parsedOptions.get(options)?.get(name) : undefined;
  if (cached !== undefined) return cached;
  const result = profile.optionsSchema.safeParse(options);
  if (!result.success) {
    throw new ConfigError(`options of profile ${name}: ${z.prettifyError(result.error)}`, {
      code: 'SSF_ERR_PROFILE_OPTIONS',
    });
  }
  if (cacheable) {
    const byName = parsedOptions.get(options) ?? new Map<string, unknown>();
    byName.set(name, result.data);
    parsedOptions.set(options, byName);
  }
  return result.data;
}

/**
 * Shapes an event for a target. Throws ProfileRefusalError with the reason when the target
 * does not accept it, and ConfigError for an unknown profile or invalid options.
 */
export function applyProfile(name: string, input: ProfileInput, options?: unknown): ShapedEvent {
  return getProfile(name).apply(input, parseProfileOptions(name, options));
}

export { ssfProfile, ssfOptionsSchema } from './ssf-1.0.ts';
export type { SsfOptions } from './ssf-1.0.ts';
export {
  oktaItpProfile,
  oktaItpOptionsSchema,
  oktaEventSubject,
  OKTA_ACCEPTED_EVENT_TYPES,
} from './okta-itp.ts';
export type { OktaItpOptions, OktaEventSubject } from './okta-itp.ts';
export { googleWorkspaceProfile, GOOGLE_WORKSPACE_AUDIENCE } from './google-workspace.ts';
export { legacySseProfile, LEGACY_SSE_ACCEPTED_EVENT_TYPES } from './legacy-sse.ts';
export { refusedAudience } from './types.ts';
export type { AudienceRefusal, ProfileInput, ShapedEvent, TargetProfile } from './types.ts';
