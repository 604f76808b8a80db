/** Cases that read the definition without running it: manifest, config schema, examples. */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { inspect } from 'node:util';
import { z } from 'zod';
import { isConnectorDefinition } from '../define.ts';
import { manifestSchema } from '../manifest.ts';
import { isSecret } from '../secret.ts';
import { eventCatalog } from '../../ssf/index.ts';
import { CASES, MIN_SKIP_REASON, caseInfo, isCaseId } from './cases.ts';
import { fail, type SuiteContext } from './context.ts';
import { unknownTypes } from './events.ts';
import {
  fieldDescription,
  isSecretField,
  schemaFields,
  valueAt,
  valuesAt,
  type JsonSchema,
} from './schema-walk.ts';

/**
 * Field names that almost always hold a credential (or a list of them): `client_secret`,
 * `api_keys`, `authorization_header`, `connection_string` (it carries the password),
 * `access_key_id` (half of an access key pair) …
 */
export const SECRET_NAME =
  /((secret|token|password|passwd|passphrase|credential|private_?key|api_?key|hmac|signing_?key|(^|_)key|[a-z]Key)s?|authorization(_?header)?|connection_?string|access_?key_?id)$/i;

export function manifestValid(ctx: SuiteContext): void {
  if (!isConnectorDefinition(ctx.definition)) {
    fail('this is not a connector definition: export what defineConnector() returns');
  }
  const parsed = manifestSchema.safeParse(ctx.definition.manifest);
  if (!parsed.success) fail(`the manifest is invalid:\n${z.prettifyError(parsed.error)}`);
  if (ctx.definition.kind !== parsed.data.kind) {
    fail(`the definition is ${ctx.definition.kind} but its manifest says ${parsed.data.kind}`);
  }
}

/** The names a connector folder may carry: its own name, or its package's name. */
export function acceptedNames(dir: string): { names: string[]; packageName: string | undefined } {
  const names = [basename(dir)];
  const pkgFile = join(dir, 'package.json');
  let packageName: string | undefined;
  if (existsSync(pkgFile)) {
    const name = (JSON.parse(readFileSync(pkgFile, 'utf8')) as { name?: unknown }).name;
    if (typeof name === 'string') {
      packageName = name;
      const unscoped = name.replace(/^@[^/]+\//, '');
      names.push(unscoped, unscoped.replace(/^ssf-bridge-connector-/, ''));
    }
  }
  return { names, packageName };
}

export function idMatchesFolder(ctx: SuiteContext): void {
  const { id } = ctx.manifest;
  const { names, packageName } = acceptedNames(ctx.connectorDir);
  if (names.includes(id)) return;
  const pkg = packageName ? ` nor its package "${packageName}"` : '';
  fail(
    `the id "${id}" matches neither the folder "${basename(ctx.connectorDir)}"${pkg}: a first-party connector ` +
      `lives in connectors/<id>/, a package is named <id> or ssf-bridge-connector-<id>`,
  );
}

export function eventTypesKnown(ctx: SuiteContext): void {
  const field = ctx.definition.kind === 'inbound' ? 'emits' : 'accepts';
  const list = ctx.manifest[field] ?? [];
  const problems: string[] = [];
  if (list.length === 0) problems.push(`${field} is empty: list the event types, or ["*"] for any`);
  if (list.includes('*') && list.length > 1)
    problems.push(`${field}: "*" already means every type; list nothing beside it`);
  for (const type of unknownTypes(list)) {
    try {
      eventCatalog.get(type);
    } catch (err) {
      problems.push(`${field}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) fail(problems.join('\n'));
}

export function skipsJustified(ctx: SuiteContext): void {
  const skips = ctx.manifest.conformance?.skip ?? {};
  const stable = ctx.manifest.stability === 'stable';
  const problems: string[] = [];
  for (const [id, reason] of Object.entries(skips)) {
    if (!isCaseId(id)) {
      problems.push(`"${id}" is not a conformance case; cases: ${CASES.map((c) => c.id).join(', ')}`);
      continue;
    }
    const info = caseInfo(id);
    if (!info.kinds.includes(ctx.definition.kind))
      problems.push(`"${id}" does not apply to ${ctx.definition.kind} connectors`);
    if (reason.trim().length < MIN_SKIP_REASON) {
      problems.push(`"${id}": the reason must say why in at least ${MIN_SKIP_REASON} characters`);
    }
    if (stable && info.group === 'delivery') {
      problems.push(`"${id}": a stable connector cannot skip delivery cases (it runs despite the skip)`);
    }
  }
  if (problems.length > 0) fail(problems.join('\n'));
}

function inputSchema(ctx: SuiteContext): JsonSchema {
  try {
    return z.toJSONSchema(ctx.definition.configSchema, { io: 'input' }) as JsonSchema;
  } catch (err) {
    return fail(
      `the config schema cannot be exported to JSON Schema (${(err as Error).message}); ` +
        'keep config fields JSON-representable and convert values in code after validation',
    );
  }
}

/** Paths of the objects in a JSON Schema that take keys they do not list (a misspelt key passes). */
function openObjects(schema: unknown, path: string, out: string[]): string[] {
  if (!schema || typeof schema !== 'object') return out;
  const node = schema as Record<string, unknown>;
  if (node.properties && typeof node.properties === 'object' && node.additionalProperties !== false) {
    out.push(path || '(root)');
  }
  for (const [key, child] of Object.entries((node.properties as Record<string, unknown>) ?? {}))
    openObjects(child, path ? `${path}.${key}` : key, out);
  for (const key of ['items', 'additionalProperties'] as const)
    if (node[key] && typeof node[key] === 'object') openObjects(node[key], `${path}[]`, out);
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const)
    for (const child of (node[key] as unknown[] | undefined) ?? []) openObjects(child, path, out);
  for (const [name, child] of Object.entries((node.$defs as Record<string, unknown>) ?? {}))
    openObjects(child, `$defs.${name}`, out);
  return out;
}

export function configStrict(ctx: SuiteContext): void {
  const json = inputSchema(ctx);
  if (json.type !== 'object' || json.additionalProperties !== false) {
    fail('the config schema must be z.strictObject({...}) so a misspelt key is an error');
  }
  const open = [...new Set(openObjects(json, '', []))];
  if (open.length > 0) {
    fail(`objects that accept unknown keys (use z.strictObject at every level): ${open.join(', ')}`);
  }
  const raw = ctx.rawConfig();
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail('options.validConfig must be an object');
  const probe = ctx.definition.configSchema.safeParse({ ...(raw as object), kit_unknown_key: true });
  if (probe.success || !probe.error.issues.some((i) => i.code === 'unrecognized_keys')) {
    fail('a config with an unknown key was accepted; use z.strictObject at every level');
  }
  ctx.parsedConfig();
}

export function configDocumented(ctx: SuiteContext): void {
  const missing = schemaFields(inputSchema(ctx))
    .filter((f) => fieldDescription(f.schema) === undefined)
    .map((f) => f.path);
  if (missing.length > 0) {
    fail(
      `fields without a description (add .meta({ description }) last in the chain): ${missing.join(', ')}`,
    );
  }
}

export function configSecrets(ctx: SuiteContext): void {
  const fields = schemaFields(inputSchema(ctx));
  const problems: string[] = [];
  const exempt = ctx.options.notSecret ?? {};
  for (const [path, reason] of Object.entries(exempt)) {
    if (reason.trim().length < MIN_SKIP_REASON)
      problems.push(`notSecret.${path}: give a reason of ${MIN_SKIP_REASON}+ characters`);
  }
  for (const field of fields) {
    const name = field.path.split('.').at(-1) ?? field.path;
    if (SECRET_NAME.test(name) && !isSecretField(field.schema) && exempt[field.path] === undefined) {
      problems.push(
        `${field.path} looks like a credential: declare it with secret(), or list it in options.notSecret with a reason`,
      );
    }
  }
  const raw = ctx.rawConfig();
  const parsed = ctx.parsedConfig();
  const printed = [JSON.stringify(parsed), inspect(parsed, { depth: 20 }), String(parsed)].join('\n');
  const checkSecret = (path: string, given: unknown, value: unknown) => {
    if (!isSecret(value)) {
      problems.push(`${path} is marked secret but does not validate to a Secret; declare it with secret()`);
    } else if (typeof given === 'string' && given.length >= 4 && printed.includes(given)) {
      problems.push(`the value of ${path} shows when the config is printed`);
    }
  };
  for (const field of fields.filter((f) => isSecretField(f.schema))) {
    // One value per item for a field inside an array (`rules[].token`: rules[0].token …).
    for (const { path, value: given } of valuesAt(raw, field.path)) {
      const value = valueAt(parsed, path);
      // A list of secrets (`api_keys: z.array(secret())`): each item is one.
      if (Array.isArray(given))
        given.forEach((item, i) => checkSecret(`${path}[${i}]`, item, valueAt(value, `[${i}]`)));
      else checkSecret(path, given, value);
    }
  }
  if (problems.length > 0) fail(problems.join('\n'));
}

export function configExamples(ctx: SuiteContext): void {
  const examples = ctx.definition.examples ?? [];
  if (examples.length === 0) fail('document at least one example config (examples: [{ title, config }])');
  const problems: string[] = [];
  for (const example of examples) {
    const result = ctx.definition.configSchema.safeParse(example.config);
    if (!result.success) problems.push(`example "${example.title}":\n${z.prettifyError(result.error)}`);
  }
  if (problems.length > 0) fail(problems.join('\n'));
}

export function configInvalid(ctx: SuiteContext): void {
  const problems: string[] = [];
  for (const [i, bad] of (ctx.options.invalidConfigs ?? []).entries()) {
    const result = ctx.definition.configSchema.safeParse(bad.config);
    if (result.success) {
      problems.push(`invalidConfigs[${i}] was accepted`);
      continue;
    }
    const message = z.prettifyError(result.error);
    if (!message.includes(bad.error))
      problems.push(`invalidConfigs[${i}]: expected "${bad.error}" in:\n${message}`);
  }
  if (problems.length > 0) fail(problems.join('\n'));
}
