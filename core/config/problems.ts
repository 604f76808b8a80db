import type { z } from 'zod';
import { formatPath } from './interpolate.ts';
import { nearest } from './suggest.ts';

export interface ConfigProblem {
  /** Where in the file, e.g. `outbound[2].config.endpoint_url`. */
  path: string;
  message: string;
}

type AnySchema = z.core.$ZodType;

/** Walks a zod schema along a data path, so messages can name the keys valid at that spot. */
export function schemaAt(schema: AnySchema, path: readonly PropertyKey[]): AnySchema | undefined {
  let current: AnySchema | undefined = schema;
  for (const part of path) {
    current = current && unwrap(current);
    if (!current) return undefined;
    const def = current._zod.def as unknown as Record<string, unknown> & { type: string };
    if (def.type === 'object') current = (def.shape as Record<string, AnySchema>)[String(part)];
    else if (def.type === 'array') current = def.element as AnySchema;
    else if (def.type === 'record') current = def.valueType as AnySchema;
    else if (def.type === 'union') {
      current = (def.options as AnySchema[])
        .map((option) => schemaAt(option, [part]))
        .find((s): s is AnySchema => s !== undefined);
    } else return undefined;
  }
  return current && unwrap(current);
}

function unwrap(schema: AnySchema): AnySchema {
  let current = schema;
  for (let i = 0; i < 20; i++) {
    const def = current._zod.def as unknown as Record<string, unknown> & { type: string };
    if (
      ['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional'].includes(def.type)
    ) {
      current = def.innerType as AnySchema;
    } else if (def.type === 'pipe') {
      current = def.in as AnySchema;
    } else if (def.type === 'lazy') {
      current = (def.getter as () => AnySchema)();
    } else break;
  }
  return current;
}

/** Keys an object schema (or union of object schemas) accepts at a path. */
export function keysAt(schema: AnySchema, path: readonly PropertyKey[]): string[] {
  const at = schemaAt(schema, path);
  if (!at) return [];
  const def = at._zod.def as unknown as Record<string, unknown> & { type: string };
  if (def.type === 'object') return Object.keys(def.shape as object);
  if (def.type === 'union') {
    return [...new Set((def.options as AnySchema[]).flatMap((option) => keysAt(option, [])))];
  }
  return [];
}

/**
 * Turns zod issues into problems with full paths. An unknown key names the nearest valid key;
 * values are never echoed, because a value may be a secret.
 */
export function problemsFromZod(
  error: z.ZodError,
  schema: AnySchema,
  prefix: readonly PropertyKey[] = [],
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const valid = keysAt(schema, issue.path);
      for (const key of issue.keys) {
        const hint = nearest(key, valid);
        problems.push({
          path: formatPath([...prefix, ...issue.path, key]),
          message:
            key === '<<'
              ? 'YAML merge keys (<<) are not supported (the file is read as YAML 1.2): write the keys out, or give a whole value an anchor (&name) and repeat it with an alias (*name)'
              : hint
                ? `unknown key "${key}"; did you mean "${hint}"?`
                : `unknown key "${key}"${valid.length ? `; valid keys: ${valid.join(', ')}` : ''}`,
        });
      }
      continue;
    }
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Report the branch that got furthest instead of "invalid input".
      const best = issue.errors.reduce((a, b) => (a.length <= b.length ? a : b));
      for (const sub of best) {
        problems.push({ path: formatPath([...prefix, ...issue.path, ...sub.path]), message: sub.message });
      }
      continue;
    }
    problems.push({ path: formatPath([...prefix, ...issue.path]), message: issue.message });
  }
  return problems;
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
}
