import type { SignedSet } from '../../core/plugin-api/index.ts';
import type { LogConfig } from './config.ts';

/** The line written for one delivered SET. */
export function formatSet(set: SignedSet, format: LogConfig['format']): string {
  if (format === 'compact') return set.jwt;
  return JSON.stringify({ delivered_set: { jti: set.jti, event_type: set.eventType, claims: set.claims } });
}
