import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface InterpolationProblem {
  path: string;
  message: string;
}

export interface InterpolationEnv {
  env: Record<string, string | undefined>;
  /** Directory that relative `${file:…}` paths are resolved against (the config file's). */
  baseDir: string;
  readFile?: (path: string) => string;
}

const REFERENCE = /\$\$|\$\{([^}]*)\}|\$\{/g;

/**
 * Expands `${env:NAME}`, `${env:NAME:-default}` and `${file:PATH}` in one string, exactly once:
 * the text a reference expands to is never scanned again, so a secret containing `$` or `${`
 * arrives intact. `$$` writes a literal `$`. Anything else after `${` is an error, not silently
 * kept, because it is almost always a typo in a reference.
 */
export function interpolateString(
  text: string,
  path: string,
  env: InterpolationEnv,
  problems: InterpolationProblem[],
): string {
  if (!text.includes('$')) return text;
  return text.replace(REFERENCE, (match, body: string | undefined) => {
    if (match === '$$') return '$';
    if (body === undefined) {
      problems.push({
        path,
        message: 'unterminated "${": close it with "}" or write "$${" for a literal "${"',
      });
      return match;
    }
    const resolved = resolveReference(body, env);
    if (typeof resolved === 'string') return resolved;
    problems.push({ path, message: resolved.error });
    return match;
  });
}

function resolveReference(body: string, env: InterpolationEnv): string | { error: string } {
  const colon = body.indexOf(':');
  const scheme = colon < 0 ? body : body.slice(0, colon);
  const rest = colon < 0 ? '' : body.slice(colon + 1);
  if (scheme === 'env') {
    const [name = '', fallback] = splitDefault(rest);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      return { error: `"\${env:${name}}" is not a valid variable name` };
    const value = env.env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    return { error: `environment variable ${name} is not set (referenced as \${env:${name}})` };
  }
  if (scheme === 'file') {
    if (rest.length === 0) return { error: '"${file:}" needs a path' };
    const target = resolve(env.baseDir, rest);
    try {
      return (env.readFile ?? ((p) => readFileSync(p, 'utf8')))(target).replace(/\r?\n$/, '');
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      return { error: `cannot read ${target} (${reason}), referenced as \${file:${rest}}` };
    }
  }
  return {
    error: `unknown reference "\${${body}}": use \${env:NAME} or \${file:PATH}, or write "$\${" for a literal "\${"`,
  };
}

function splitDefault(rest: string): [string, string?] {
  const at = rest.indexOf(':-');
  return at < 0 ? [rest] : [rest.slice(0, at), rest.slice(at + 2)];
}

/** Paths of strings that were exactly one reference (`port: ${env:PORT}`), for type coercion. */
export type ReferencedPaths = Set<string>;

const SINGLE_REFERENCE = /^\$\{[^}]*\}$/;

/** Interpolates every string in a parsed document (not keys), returning a new tree. */
export function interpolateTree(
  value: unknown,
  env: InterpolationEnv,
  problems: InterpolationProblem[],
  path: (string | number)[] = [],
  referenced: ReferencedPaths = new Set(),
): unknown {
  if (typeof value === 'string') {
    if (SINGLE_REFERENCE.test(value)) referenced.add(formatPath(path));
    return interpolateString(value, formatPath(path), env, problems);
  }
  if (Array.isArray(value))
    return value.map((item, i) => interpolateTree(item, env, problems, [...path, i], referenced));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value))
      out[key] = interpolateTree(item, env, problems, [...path, key], referenced);
    return out;
  }
  return value;
}

/** `outbound[2].config.endpoint_url` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out.length === 0 ? String(part) : `.${String(part)}`;
  }
  return out.length === 0 ? '(root)' : out;
}
