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

/**
 * The static alias map from config, as a resolver. A subject equal to an alias's `from` (by
 * `subjectKey`) becomes its `to`; otherwise each identifier of an `aliases` subject and each
 * member of a `complex` subject that equals a `from` is replaced on its own (an `aliases` `to`
 * adds its identifiers to an aliases subject; a `to` that cannot nest there is not applied).
 * One hop: a `to` is never looked up again. The caller re-normalises the result.
 */
export function aliasResolver(
  config: SubjectsConfig,
  subjectKey: (subject: SubjectIdentifier) => string,
): SubjectResolver {
  const aliases = new Map(
    config.aliases.map(({ from, to }) => [subjectKey(from as SubjectIdentifier), to as SubjectIdentifier]),
  );
  const lookup = (subject: unknown): SubjectIdentifier | undefined => {
    if (subject === null || typeof subject !== 'object' || Array.isArray(subject)) return undefined;
    try {
      return aliases.get(subjectKey(subject as SubjectIdentifier));
    } catch {
      return undefined;
    }
  };
  return (subject) => {
    const whole = lookup(subject);
    if (whole !== undefined) return whole;
    if (subject.format === 'aliases' && Array.isArray(subject.identifiers)) {
      let changed = false;
      const identifiers = (subject.identifiers as unknown[]).flatMap((id) => {
        const to = lookup(id);
        if (to === undefined || to.format === 'complex') return [id];
        changed = true;
        return to.format === 'aliases' ? (to.identifiers as unknown[]) : [to];
      });
      return changed ? { ...subject, identifiers } : undefined;
    }
    if (subject.format === 'complex') {
      let changed = false;
      const rewritten: Record<string, unknown> = { ...subject };
      for (const [name, member] of Object.entries(subject)) {
        if (name === 'format') continue;
        const to = lookup(member);
        if (to === undefined || to.format === 'complex' || to.format === 'aliases') continue;
        rewritten[name] = to;
        changed = true;
      }
      return changed ? (rewritten as SubjectIdentifier) : undefined;
    }
    return undefined;
  };
}
