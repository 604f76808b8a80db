import type { SubjectIdentifier } from '../plugin-api/types.ts';
import type { SubjectsConfig } from './config.ts';

/** Canonical JSON: keys sorted at every level, so equal subjects give equal text. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A subject key good enough where no catalog-aware one is given: stable JSON with e-mail
 * addresses lower-cased (mailbox comparison is case-insensitive in practice).
 */
export function stableSubjectKey(subject: SubjectIdentifier): string {
  return stableJson(normalise(subject));
}

function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = k === 'email' && typeof v === 'string' ? v.trim().toLowerCase() : normalise(v);
  }
  return out;
}

/** Every identifier string in a subject (nested members of complex subjects included). */
export function subjectStrings(subject: unknown): string[] {
  if (typeof subject === 'string') return [subject];
  if (Array.isArray(subject)) return subject.flatMap(subjectStrings);
  if (subject === null || typeof subject !== 'object') return [];
  return Object.entries(subject as Record<string, unknown>).flatMap(([k, v]) =>
    k === 'format' ? [] : subjectStrings(v),
  );
}

/** Adds or replaces the subject of an event before routing; undefined keeps it. */
export type SubjectResolver = (
  subject: SubjectIdentifier,
  context: { instanceId: string; eventType: string },
) => SubjectIdentifier | undefined | Promise<SubjectIdentifier | undefined>;

/** The static alias map from config, as a resolver. */
export function aliasResolver(
  config: SubjectsConfig,
  subjectKey: (subject: SubjectIdentifier) => string,
): SubjectResolver {
  const aliases = new Map(
    config.aliases.map(({ from, to }) => [subjectKey(from as SubjectIdentifier), to as SubjectIdentifier]),
  );
  return (subject) => aliases.get(subjectKey(subject));
}
