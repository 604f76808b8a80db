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

/**
 * A reference `${…}`, possibly after pairs of `$`, or pairs of `$` before a `{`. Only a run of `$`
 * right before `{` is special, so JSONata's `$` (the context) and `$$` (the root) in mapping rules
 * arrive as written. In that run each `$$` is one literal `$`: `$${` is a literal `${`, and
 * `$$${env:X}` is a `$` followed by X's value. The body `[^}]*` ends at the first `}`. A match
 * starts only where a run of `$` starts, so a long run is scanned once, not once per `$` in it.
 */
const REFERENCE = /(?<!\$)(?:((?:\$\$)*)\$\{([^}]*)(\})?|((?:\$\$)+)\{)/g;

/**
 * Expands `${env:NAME}`, `${env:NAME:-default}` and `${file:PATH}` in one string, exactly once:
 * the text a reference expands to is never scanned again, so a secret containing `$` or `${`
 * arrives intact. Anything else after `${` is an error, not silently kept, because it is almost
 * always a typo in a reference.
 */
export function interpolateString(
  text: string,
  path: string,
  env: InterpolationEnv,
  problems: InterpolationProblem[],
): string {
  if (!text.includes('${')) return text;
  return text.replace(
    REFERENCE,
    (match, pairs: string, body?: string, close?: string, escapedPairs?: string) => {
      if (escapedPairs !== undefined) return `${'$'.repeat(escapedPairs.length / 2)}{`;
      const error = malformed(body ?? '', close !== undefined);
      const resolved = error ? { error } : resolveReference(body ?? '', env);
      if (typeof resolved === 'string') return '$'.repeat(pairs.length / 2) + resolved;
      problems.push({ path, message: resolved.error });
      return match;
    },
  );
}

/**
 * A reference the pattern cannot read as written. A `{` inside one means its author expected
 * nesting (`${env:A:-${file:/run/secrets/t}}`): the first `}` would end the reference, giving
 * the inner reference's text as the value, or the value followed by a stray `}`.
 */
function malformed(body: string, closed: boolean): string | undefined {
  if (body.includes('${'))
    return 'nested references are not supported: a "${…}" cannot contain another; use one ${env:NAME} or ${file:PATH} (a default is plain text), or write "$${" for a literal "${"';
  if (body.includes('{'))
    return 'a "${…}" cannot contain "{": its first "}" would end it; write "$${" for a literal "${"';
  if (!closed) return 'unterminated "${": close it with "}" or write "$${" for a literal "${"';
  return undefined;
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

/**
 * Values a config may hold once its aliases are expanded. yaml's own alias limit counts aliases,
 * not their size, and this copy gives each alias its own subtree: an anchor of 200,000 values
 * used 990 times passes that limit and would take minutes and gigabytes here.
 */
export const MAX_CONFIG_VALUES = 1_000_000;

/** The expanded tree holds more values than `maxNodes`; thrown rather than a problem per node. */
export class ConfigTooLarge extends Error {}

export interface TreeOptions {
  /** Filled with the paths of strings that were exactly one reference. */
  referenced?: ReferencedPaths;
  maxNodes?: number;
}

/** Interpolates every string in a parsed document (not keys), returning a new tree. */
export function interpolateTree(
  value: unknown,
  env: InterpolationEnv,
  problems: InterpolationProblem[],
  { referenced = new Set(), maxNodes = MAX_CONFIG_VALUES }: TreeOptions = {},
): unknown {
  return copyNode(value, [], { env, problems, referenced, maxNodes, nodes: 0, open: new Set() });
}

interface Walk {
  env: InterpolationEnv;
  problems: InterpolationProblem[];
  referenced: ReferencedPaths;
  maxNodes: number;
  nodes: number;
  /**
   * Collections being copied: an alias inside the value its anchor names (`a: &a [*a]`) is the
   * same object again, and would be copied until the stack runs out.
   */
  open: Set<object>;
}

function copyNode(node: unknown, path: (string | number)[], walk: Walk): unknown {
  if (++walk.nodes > walk.maxNodes)
    throw new ConfigTooLarge(
      `the config holds more than ${walk.maxNodes.toLocaleString('en-US')} values once its aliases (*name) are expanded; write it without repeating large anchors`,
    );
  if (typeof node === 'string') {
    if (SINGLE_REFERENCE.test(node)) walk.referenced.add(formatPath(path));
    return interpolateString(node, formatPath(path), walk.env, walk.problems);
  }
  if (node === null || typeof node !== 'object') return node;
  const problem = walk.open.has(node)
    ? 'an alias (*name) is used inside the value its anchor (&name) names, which never ends'
    : !Array.isArray(node) && !isPlainObject(node)
      ? // Never made from YAML's core schema; kept out rather than copied as a mapping.
        'holds a value of an unsupported type: a config holds text, numbers, booleans, lists and mappings'
      : undefined;
  if (problem) {
    walk.problems.push({ path: formatPath(path), message: problem });
    return undefined;
  }
  walk.open.add(node);
  try {
    return Array.isArray(node)
      ? node.map((item, i) => copyNode(item, [...path, i], walk))
      : copyMapping(node, path, walk);
  } finally {
    walk.open.delete(node);
  }
}

function copyMapping(node: object, path: (string | number)[], walk: Walk): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(node)) {
    // Defined, not assigned: `out.__proto__ = …` would set the copy's prototype, and a strict
    // schema would then read settings through it instead of reporting an unknown key.
    Object.defineProperty(out, key, {
      value: copyNode(item, [...path, key], walk),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function isPlainObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
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
