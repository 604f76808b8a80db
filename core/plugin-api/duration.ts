import { z } from 'zod';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

/**
 * Parses a duration such as `250ms`, `30s`, `5m`, `1h30m` or `7d` into milliseconds.
 * A bare number is taken as milliseconds. Returns undefined for anything else.
 */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  const text = input.trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (text.length === 0) return undefined;
  DURATION_PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = DURATION_PART.exec(text); m !== null; m = DURATION_PART.exec(text)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    consumed = DURATION_PART.lastIndex;
  }
  return consumed === text.length ? Math.round(total) : undefined;
}

/** A duration in the unit that reads best: `1h30m`, `30s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000 || ms % 1000 !== 0) return `${ms}ms`;
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

/** Bounds of a duration field in milliseconds: a timeout of 0 or a poll every millisecond is a mistake. */
export interface DurationBounds {
  min?: number;
  max?: number;
}

/** Config helper: a duration string (or milliseconds) that validates to milliseconds, within bounds. */
export function duration(description?: string, bounds: DurationBounds = {}) {
  return z
    .union([z.string(), z.number()])
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `"${String(value)}" is not a duration; write e.g. 500ms, 30s, 5m, 1h30m or 7d`,
        });
        return z.NEVER;
      }
      if (bounds.min !== undefined && ms < bounds.min) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${formatDuration(bounds.min)}` });
        return z.NEVER;
      }
      if (bounds.max !== undefined && ms > bounds.max) {
        ctx.addIssue({ code: 'custom', message: `must be at most ${formatDuration(bounds.max)}` });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ format: 'duration', ...(description ? { description } : {}) });
}
