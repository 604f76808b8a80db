import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  isAlias,
  LineCounter,
  parseDocument,
  visit,
  type Document,
  type ErrorCode,
  type YAMLError,
} from 'yaml';
import type { ConnectorDefinition } from '../plugin-api/index.ts';
import { isSecret, registerSecretValue } from '../plugin-api/secret.ts';
import { ConnectorRegistry, loadPlugins } from '../runtime/registry.ts';
import {
  ConfigTooLarge,
  interpolateTree,
  formatPath,
  type InterpolationProblem,
  type ReferencedPaths,
} from './interpolate.ts';
import type { z } from 'zod';
import { problemsFromZod, schemaAt, type ConfigProblem } from './problems.ts';
import { rootConfigSchema, type RootConfig } from './root.ts';
import { nearest } from './suggest.ts';

export interface ResolvedInstance {
  id: string;
  kind: 'inbound' | 'outbound';
  definition: ConnectorDefinition;
  enabled: boolean;
  /** The connector's config after validation (secrets wrapped, durations in ms). */
  config: unknown;
  /** Index in its list, for messages: `inbound[2]`. */
  path: string;
}

export interface LoadedConfig {
  root: RootConfig;
  instances: ResolvedInstance[];
  registry: ConnectorRegistry;
  /** Absolute path of the file, or undefined for embedded defaults. */
  file: string | undefined;
}

export type LoadResult = { ok: true; config: LoadedConfig } | { ok: false; problems: ConfigProblem[] };

export interface LoadOptions {
  env?: Record<string, string | undefined>;
  /** First-party connectors; plugins named in the file are added to a copy. */
  registry: ConnectorRegistry;
  /** Imports a resolved plugin entry (a file URL); tests replace it. */
  importer?: (url: string) => Promise<Record<string, unknown>>;
  /** Checks that need the whole validated config (e.g. routes naming instances). */
  crossChecks?: Array<(config: LoadedConfig) => ConfigProblem[]>;
}

/** Far beyond any real config; parsing a larger file would only spend memory. */
export const MAX_CONFIG_BYTES = 10 * 1024 * 1024;
const TOO_LARGE: ConfigProblem = {
  path: '(file)',
  message: 'the config is larger than 10 MB; a config file is a few kilobytes',
};

/** Reads, interpolates and validates a config file, reporting every problem at once. */
export async function loadConfigFile(file: string, options: LoadOptions): Promise<LoadResult> {
  const absolute = resolve(file);
  let text: string;
  try {
    // Checked before reading; a pipe (size 0 here) is checked by its text in loadConfigText.
    if (statSync(absolute).size > MAX_CONFIG_BYTES) return { ok: false, problems: [TOO_LARGE] };
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    return { ok: false, problems: [{ path: '(file)', message: `cannot read ${absolute} (${reason})` }] };
  }
  return loadConfigText(text, { ...options, file: absolute });
}

export async function loadConfigText(
  text: string,
  options: LoadOptions & { file?: string },
): Promise<LoadResult> {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) return { ok: false, problems: [TOO_LARGE] };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: true,
    uniqueKeys: true,
    // YAML 1.2 core types only, whatever %YAML line the file has: YAML 1.1's types (!!binary,
    // !!set, !!timestamp, `yes` as true) would arrive as Buffers, Sets and Dates, or change meaning.
    schema: 'core',
    resolveKnownTags: false,
  });
  // yaml only warns of a tag it cannot resolve and keeps the bare text (`!env TOKEN` gives
  // "TOKEN"), which would then pass as the value.
  const failures = [...doc.errors, ...doc.warnings.filter((w) => TAG_WARNINGS.has(w.code))];
  if (failures.length > 0) {
    // Fixed messages only: yaml's own quote the offending text, which may be a secret.
    const problems = failures.map((e) => ({
      path: e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '(file)',
      message: yamlErrorMessage(e),
    }));
    return { ok: false, problems };
  }
  const unresolved = unresolvedAliases(doc, lineCounter);
  if (unresolved.length > 0) return { ok: false, problems: unresolved };
  let data: unknown;
  try {
    // yaml refuses aliases that would expand beyond reason (a "billion laughs" file) here.
    data = doc.toJS({ maxAliasCount: 1000 }) ?? {};
  } catch (err) {
    const message = (err as Error).message.startsWith(EXCESSIVE_ALIASES)
      ? EXCESSIVE_ALIASES
      : 'the YAML document cannot be read';
    return { ok: false, problems: [{ path: '(file)', message }] };
  }
  return loadConfigData(data, options);
}

const EXCESSIVE_ALIASES = 'Excessive alias count indicates a resource exhaustion attack';

const PLAIN_VALUES =
  'a config holds text, numbers, booleans, null, lists and mappings, and takes values from outside with ${env:NAME} or ${file:PATH}';

/** Warnings that are errors here: the value they concern would silently lose its tag. */
const TAG_WARNINGS = new Set<ErrorCode>(['TAG_RESOLVE_FAILED', 'BAD_COLLECTION_TYPE']);

/**
 * What each YAML syntax error says, in words of our own: yaml's messages quote tokens and
 * scalars of the file (`Unexpected scalar token in YAML stream: "<text>"`), and the text of a
 * config file may be a secret. The line and column tell where.
 */
const YAML_ERRORS: Record<ErrorCode, string> = {
  ALIAS_PROPS: 'an alias (*name) cannot have an anchor or a tag',
  BAD_ALIAS: 'malformed alias (*name)',
  BAD_COLLECTION_TYPE: 'a tag does not fit the kind of value it is on',
  BAD_DIRECTIVE: 'invalid directive (a line starting with %)',
  BAD_DQ_ESCAPE:
    'invalid escape sequence in a double-quoted string (write \\\\ for a backslash, or use single quotes)',
  BAD_INDENT: 'bad indentation: the items of one mapping or list must start at the same column',
  BAD_PROP_ORDER: 'an anchor (&name) or a tag (!tag) is in the wrong place',
  BAD_SCALAR_START: 'a plain value cannot start with this character; quote the value',
  BLOCK_AS_IMPLICIT_KEY: 'a value contains ": " (quote it) or a mapping starts on the line of its key',
  BLOCK_IN_FLOW: 'an indented mapping or list cannot appear inside [ ] or { }',
  DUPLICATE_KEY: 'a key appears twice in the same mapping',
  IMPOSSIBLE: 'the YAML cannot be read here',
  KEY_OVER_1024_CHARS: 'a key is longer than 1024 characters',
  MISSING_CHAR: 'a character is missing: an unclosed quote, bracket or brace, or a missing "," or ":"',
  MULTILINE_IMPLICIT_KEY:
    'a key must fit on one line: check the indentation, or quote a value that contains ": "',
  MULTIPLE_ANCHORS: 'a value has more than one anchor (&name)',
  MULTIPLE_DOCS:
    'the file holds more than one YAML document (a line of --- or ...); a config is one document',
  MULTIPLE_TAGS: 'a value has more than one tag (!tag)',
  NON_STRING_KEY: 'a key is not a string',
  RESOURCE_EXHAUSTION: EXCESSIVE_ALIASES,
  TAB_AS_INDENT: 'tabs are not allowed as indentation; indent with spaces',
  TAG_RESOLVE_FAILED: `unknown tag (!tag): ${PLAIN_VALUES}`,
  UNEXPECTED_TOKEN: 'unexpected text: check the indentation, brackets and quotes',
};

/** Closer words for some messages, recognised by yaml's fixed wording and never copying from it. */
const YAML_ERROR_DETAILS: Array<[ErrorCode, RegExp, string]> = [
  ['MISSING_CHAR', /^Missing closing "quote/, 'a double-quoted string is not closed'],
  ['MISSING_CHAR', /^Missing closing 'quote/, 'a single-quoted string is not closed'],
  ['UNEXPECTED_TOKEN', /^Unexpected flow-map-end token/, 'a } closes no { (check the braces)'],
  ['UNEXPECTED_TOKEN', /^Unexpected flow-seq-end token/, 'a ] closes no [ (check the brackets)'],
  [
    'UNEXPECTED_TOKEN',
    /^Unexpected map-value-ind token/,
    'unexpected ":": check the indentation, or quote a value that contains ": "',
  ],
  [
    'UNEXPECTED_TOKEN',
    /^Unexpected scalar (token|at node end)/,
    'unexpected value: check the indentation, or the text after a closing quote or bracket',
  ],
  [
    'UNEXPECTED_TOKEN',
    /^Block scalar header includes extra characters/,
    'unexpected characters after a block scalar indicator (| or >)',
  ],
  [
    'BAD_INDENT',
    /^Flow (map|sequence) in block collection must be sufficiently indented/,
    'a { } or [ ] value must be indented below its key and closed with its } or ]',
  ],
];

/** YAML 1.1 types that yaml knows but a config refuses: they are not text, numbers or lists. */
const YAML_1_1_TYPES = ['binary', 'set', 'omap', 'pairs', 'timestamp', 'merge', 'value', 'yaml'];
const CORE_TYPES = ['str', 'int', 'float', 'bool', 'null', 'map', 'seq'];

/**
 * What to say of a tag yaml could not resolve (`Unresolved tag: <tag>`). Only tags named in the
 * lists above are named back; any other tag is file text, and is not echoed.
 */
function tagMessage(error: YAMLError): string | undefined {
  const tag = /^Unresolved tag: (\S+)/.exec(error.message)?.[1];
  if (tag === undefined) return undefined;
  if (/^!(env|secret)$/i.test(tag))
    return 'tags such as !env and !secret are not read: write ${env:NAME} for an environment variable, or ${file:PATH} for a secret in a file';
  const type = /^tag:yaml\.org,2002:(\w+)$/.exec(tag)?.[1] ?? '';
  if (YAML_1_1_TYPES.includes(type)) return `!!${type} is not supported: ${PLAIN_VALUES}`;
  if (CORE_TYPES.includes(type)) return `the value does not fit its tag !!${type}; remove the tag`;
  return undefined;
}

function yamlErrorMessage(error: YAMLError): string {
  const tag = error.code === 'TAG_RESOLVE_FAILED' ? tagMessage(error) : undefined;
  if (tag) return tag;
  const detail = YAML_ERROR_DETAILS.find(
    ([code, pattern]) => code === error.code && pattern.test(error.message),
  );
  return detail?.[2] ?? YAML_ERRORS[error.code] ?? 'invalid YAML';
}

/**
 * Aliases (*name) with no anchor (&name) before them, which yaml's own message would name. One
 * pass in document order, as yaml resolves them: `alias.resolve(doc)` walks the whole document
 * for each alias, which is quadratic in a file of many aliases.
 */
function unresolvedAliases(doc: Document, lineCounter: LineCounter): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const anchors = new Set<string>();
  visit(doc, {
    Node(_key, node) {
      if (!isAlias(node) && node.anchor) anchors.add(node.anchor);
      if (!isAlias(node) || anchors.has(node.source)) return;
      const at = node.range ? lineCounter.linePos(node.range[0]) : undefined;
      problems.push({
        path: at ? `line ${at.line}, column ${at.col}` : '(file)',
        message: 'an alias (*name) refers to no anchor (&name) set before it',
      });
    },
  });
  return problems;
}

/** Validates an already-parsed document (JSON or YAML). */
export async function loadConfigData(
  data: unknown,
  options: LoadOptions & { file?: string },
): Promise<LoadResult> {
  const baseDir = options.file ? dirname(options.file) : process.cwd();
  const interpolationProblems: InterpolationProblem[] = [];
  const referenced: ReferencedPaths = new Set();
  let expanded: unknown;
  try {
    const env = { env: options.env ?? process.env, baseDir };
    expanded = interpolateTree(data, env, interpolationProblems, { referenced });
  } catch (err) {
    if (!(err instanceof ConfigTooLarge)) throw err;
    return { ok: false, problems: [{ path: '(file)', message: err.message }] };
  }
  const problems: ConfigProblem[] = [...interpolationProblems];

  const raw = (expanded && typeof expanded === 'object' ? expanded : {}) as Record<string, unknown>;
  if (!expanded || typeof expanded !== 'object' || Array.isArray(expanded)) {
    problems.push({ path: '(root)', message: 'the config must be a mapping of settings' });
  }

  const registry = new ConnectorRegistry(options.registry.list());
  const pluginNames = Array.isArray(raw.plugins)
    ? raw.plugins.filter((p): p is string => typeof p === 'string')
    : [];
  // Entries are found from the config file's folder first (see resolvePlugin).
  const pluginSearch = {
    configDir: options.file ? dirname(options.file) : undefined,
    importer: options.importer,
  };
  for (const failure of await loadPlugins(registry, pluginNames, pluginSearch)) {
    problems.push({ path: formatPath(['plugins', failure.index]), message: failure.message });
  }

  const schemaProblems: ConfigProblem[] = [];
  const parsed = safeParseCoercing(rootConfigSchema, raw, referenced, []);
  if (!parsed.success) schemaProblems.push(...problemsFromZod(parsed.error, rootConfigSchema));
  const instances = resolveInstances(raw, registry, schemaProblems, referenced);
  // A value whose reference could not be expanded fails its schema too; say it once.
  const unexpanded = new Set(interpolationProblems.map((p) => p.path));
  problems.push(...schemaProblems.filter((p) => !unexpanded.has(p.path)));
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };

  problems.push(...sharedCredentials(parsed.data, instances));
  if (problems.length > 0) return { ok: false, problems };

  const loaded: LoadedConfig = {
    root: deepFreeze(parsed.data),
    instances,
    registry,
    file: options.file,
  };
  for (const check of options.crossChecks ?? []) problems.push(...check(loaded));
  return problems.length > 0 ? { ok: false, problems } : { ok: true, config: loaded };
}

/**
 * An admin token must be the admin API's alone. Any other secret of the config is accepted from,
 * or sent to, someone else: an SSF receiver's token, an ingest token or webhook secret a source
 * sends, a credential a connector presents to a vendor's API or a destination. Had an admin token
 * the same value, that party could use the admin API (and write, with a write token). Every
 * `Secret` counts (the plugin API's static checks make connectors declare credentials with
 * `secret()`), wherever it is, so no connector's field names need listing here. Compared by
 * value, named by path only.
 */
function sharedCredentials(root: RootConfig, instances: ResolvedInstance[]): ConfigProblem[] {
  const others = new Map<string, string>();
  const { admin, ...rest } = root;
  collectSecrets(rest, [], others);
  for (const instance of instances) collectSecrets(instance.config, [`${instance.path}.config`], others);
  const problems: ConfigProblem[] = [];
  const admins = new Map<string, number>();
  admin.tokens.forEach((t, i) => {
    const value = t.token.reveal();
    const path = `admin.tokens[${i}].token`;
    // Two holders with one token: which role it gets would depend on the order of the list.
    const earlier = admins.get(value);
    if (earlier !== undefined) {
      problems.push({
        path,
        message: `has the same value as admin.tokens[${earlier}].token; each holder needs a token of its own (the audit log names the holder, and the role would depend on the order of the list)`,
      });
      return;
    }
    admins.set(value, i);
    const other = others.get(value);
    if (other === undefined) return;
    problems.push({
      path,
      message: other.startsWith('transmitter.receivers[')
        ? `has the same value as ${other}; an admin token must not be accepted by the SSF endpoints, nor a receiver's by the admin API: give each its own`
        : `has the same value as ${other}; whoever sends or receives that credential (a webhook sender, a vendor's API, a destination) would have admin access: give the admin token a value of its own`,
    });
  });
  return problems;
}

/**
 * Every `Secret` in a validated value with the path it is at, the first path of each value kept.
 * A plugin that bundles its own copy of the plugin API (rather than using the bridge's, as a peer
 * dependency) makes Secrets of that copy's class, registered with that copy: such a value is
 * registered here too, or the logger, which scrubs with the bridge's registry, would print it.
 */
function collectSecrets(value: unknown, path: PropertyKey[], out: Map<string, string>): void {
  const revealed = isSecret(value) ? value.reveal() : foreignSecretValue(value);
  if (revealed !== undefined) {
    if (!isSecret(value)) registerSecretValue(revealed);
    if (!out.has(revealed)) out.set(revealed, formatPath(path));
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => collectSecrets(item, [...path, i], out));
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return;
  for (const [key, item] of Object.entries(value)) collectSecrets(item, [...path, key], out);
}

/** The value of a Secret made by another copy of the plugin API: `reveal()`, and `[redacted]` as JSON. */
function foreignSecretValue(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const candidate = value as { reveal?: unknown; toJSON?: unknown };
  if (typeof candidate.reveal !== 'function' || typeof candidate.toJSON !== 'function') return undefined;
  try {
    if (candidate.toJSON() !== '[redacted]') return undefined;
    const revealed: unknown = candidate.reveal();
    return typeof revealed === 'string' ? revealed : undefined;
  } catch {
    return undefined;
  }
}

/** Validates each instance's `config` against its connector's schema, collecting problems. */
function resolveInstances(
  raw: Record<string, unknown>,
  registry: ConnectorRegistry,
  problems: ConfigProblem[],
  referenced: ReferencedPaths,
): ResolvedInstance[] {
  const instances: ResolvedInstance[] = [];
  const seen = new Map<string, string>();
  for (const kind of ['inbound', 'outbound'] as const) {
    const list = raw[kind];
    if (!Array.isArray(list)) continue;
    list.forEach((entry: unknown, index) => {
      if (!entry || typeof entry !== 'object') return;
      const { id, connector, config, enabled } = entry as Record<string, unknown>;
      const at = formatPath([kind, index]);
      if (typeof id === 'string') {
        const earlier = seen.get(id);
        if (earlier) problems.push({ path: `${at}.id`, message: `id "${id}" is already used by ${earlier}` });
        seen.set(id, at);
      }
      if (typeof connector !== 'string') return;
      const definition = registry.get(connector);
      if (!definition) {
        const hint = nearest(connector, registry.ids());
        problems.push({
          path: `${at}.connector`,
          message: `unknown connector "${connector}"${hint ? `; did you mean "${hint}"?` : ''} (see: ssf-bridge connectors list)`,
        });
        return;
      }
      if (definition.kind !== kind) {
        problems.push({
          path: `${at}.connector`,
          message: `"${connector}" is an ${definition.kind} connector; list it under ${definition.kind}:`,
        });
        return;
      }
      const result = safeParseCoercing(definition.configSchema, config ?? {}, referenced, [
        kind,
        index,
        'config',
      ]);
      if (!result.success) {
        problems.push(...problemsFromZod(result.error, definition.configSchema, [kind, index, 'config']));
        return;
      }
      instances.push({
        id: String(id),
        kind,
        definition,
        enabled: enabled !== false,
        config: deepFreeze(result.data),
        path: at,
      });
    });
  }
  return instances;
}

/**
 * Parses, and where a value that was exactly one reference (`port: ${env:PORT}`) is text but the
 * field takes a number, a boolean or, in a field of several types, a list, converts the expanded
 * text (see convertReference) and parses again. Only such values are converted: text written in
 * the file keeps the type YAML gave it.
 */
function safeParseCoercing<S extends z.ZodType>(
  schema: S,
  data: unknown,
  referenced: ReferencedPaths,
  prefix: PropertyKey[],
): z.ZodSafeParseResult<z.output<S>> {
  const first = schema.safeParse(data);
  if (first.success || typeof data !== 'object' || data === null) return first;
  let changed = false;
  for (const issue of first.error.issues) {
    if (issue.code !== 'invalid_type' && issue.code !== 'invalid_union') continue;
    if (!referenced.has(formatPath([...prefix, ...issue.path])) || issue.path.length === 0) continue;
    const parent = issue.path
      .slice(0, -1)
      .reduce<unknown>((node, key) => (node as Record<PropertyKey, unknown>)?.[key], data);
    const key = issue.path[issue.path.length - 1] as PropertyKey;
    const raw = (parent as Record<PropertyKey, unknown> | undefined)?.[key];
    if (typeof raw !== 'string') continue;
    const kinds = acceptedKinds(schemaAt(schema, issue.path));
    const expected: string | undefined = issue.code === 'invalid_type' ? issue.expected : undefined;
    if (expected === 'number' || expected === 'boolean') kinds.add(expected); // if not walked
    const value = convertReference(raw, kinds);
    if (value === undefined) continue;
    (parent as Record<PropertyKey, unknown>)[key] = value;
    changed = true;
  }
  return changed ? schema.safeParse(data) : first;
}

type Kind = 'boolean' | 'number' | 'list';

/**
 * The kinds of value a field takes that text can be converted to. A list only in a field of
 * several types (`server.trust_proxy: true | 2 | [10.0.0.0/8]`): a plain list field keeps asking
 * for a list, since splitting a secret such as a JWK at its commas would only confuse.
 */
function acceptedKinds(schema: z.core.$ZodType | undefined): Set<Kind> {
  const kinds = new Set<Kind>();
  const type = schema?._zod.def.type;
  if (type === 'boolean' || type === 'number') kinds.add(type);
  if (type !== 'union') return kinds;
  for (const option of (schema?._zod.def as z.core.$ZodUnionDef).options) {
    const optionType = schemaAt(option, [])?._zod.def.type;
    if (optionType === 'boolean' || optionType === 'number') kinds.add(optionType);
    if (optionType === 'array' && schemaAt(option, [0])?._zod.def.type === 'string') kinds.add('list');
  }
  return kinds;
}

/** `true`/`false` as a boolean, a decimal as a number, else comma-separated text as a list. */
function convertReference(text: string, kinds: Set<Kind>): unknown {
  const bool = kinds.has('boolean') ? booleanOf(text) : undefined;
  if (bool !== undefined) return bool;
  const number = kinds.has('number') ? numberOf(text) : undefined;
  if (number !== undefined) return number;
  if (!kinds.has('list')) return undefined;
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function numberOf(text: string): number | undefined {
  return /^-?\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : undefined;
}

function booleanOf(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  return t === 'true' ? true : t === 'false' ? false : undefined;
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
