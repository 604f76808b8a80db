/** Reading a connector's config JSON Schema (zod's input-mode export) field by field. */
import { z } from 'zod';
import { formatDuration } from '../duration.ts';

export type JsonSchema = Record<string, unknown>;

export interface SchemaField {
  /**
   * Dotted path, e.g. `auth.client_secret`; a field of the items of an array has `[]` after the
   * array's name, e.g. `rules[].match`.
   */
  path: string;
  schema: JsonSchema;
  required: boolean;
  /**
   * For a field of some variants of a discriminated union only: the discriminator and the
   * values that have it, e.g. `type: refresh_token`.
   */
  when?: string;
}

function asObject(value: unknown): JsonSchema | undefined {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as JsonSchema) : undefined;
}

/** The object branches of a schema: itself, or the members of an anyOf/oneOf/allOf. */
function objectBranches(schema: JsonSchema): JsonSchema[] {
  if (asObject(schema.properties)) return [schema];
  const members = [schema.anyOf, schema.oneOf, schema.allOf].flatMap((m) => (Array.isArray(m) ? m : []));
  return members
    .map(asObject)
    .filter((m): m is JsonSchema => m !== undefined && asObject(m.properties) !== undefined);
}

const propertiesOf = (branch: JsonSchema) => asObject(branch.properties) ?? {};

/** The items of an array schema (itself, or an anyOf/oneOf member such as the array of a nullable). */
function arrayItems(schema: JsonSchema): JsonSchema | undefined {
  const members = [schema.anyOf, schema.oneOf].flatMap((m) => (Array.isArray(m) ? m : []));
  const array = [schema, ...members.map(asObject)].find((m) => m?.type === 'array');
  return array ? asObject(array.items) : undefined;
}

/** The fields inside a field: an object's properties, or those of the objects an array holds. */
function fieldsInside(schema: JsonSchema, path: string): SchemaField[] {
  if (objectBranches(schema).length > 0) return schemaFields(schema, path);
  const items = arrayItems(schema);
  return items ? fieldsInside(items, `${path}[]`) : [];
}

/** The property every branch fixes to a value of its own (`const`), if there is one. */
function discriminatorOf(branches: JsonSchema[]): string | undefined {
  if (branches.length < 2) return undefined;
  return Object.keys(propertiesOf(branches[0]!)).find((name) =>
    branches.every((b) => asObject(propertiesOf(b)[name])?.const !== undefined),
  );
}

/**
 * The discriminator as one field: its values as an enum, and what each means, from the
 * description of each variant's value.
 */
function mergedDiscriminator(branches: JsonSchema[], name: string): JsonSchema {
  const variants = branches.map((b) => asObject(propertiesOf(b)[name])!);
  const described = variants.filter((v) => typeof v.description === 'string');
  return {
    type: 'string',
    enum: variants.map((v) => v.const),
    ...(described.length > 0
      ? { description: described.map((v) => `\`${String(v.const)}\`: ${String(v.description)}`).join(' ') }
      : {}),
  };
}

/** Every property, nested ones (in objects and in the items of arrays) included, in declaration order. */
export function schemaFields(schema: JsonSchema, prefix = ''): SchemaField[] {
  const fields: SchemaField[] = [];
  const branches = objectBranches(schema);
  const discriminator = discriminatorOf(branches);
  for (const branch of branches) {
    const required = new Set(Array.isArray(branch.required) ? (branch.required as string[]) : []);
    for (const [name, value] of Object.entries(propertiesOf(branch))) {
      const path = prefix ? `${prefix}.${name}` : name;
      if (fields.some((f) => f.path === path)) continue;
      if (name === discriminator) {
        fields.push({ path, schema: mergedDiscriminator(branches, name), required: required.has(name) });
        continue;
      }
      const child = asObject(value) ?? {};
      const holders = discriminator ? branches.filter((b) => name in propertiesOf(b)) : branches;
      const when =
        holders.length < branches.length
          ? `${discriminator}: ${holders.map((b) => String(asObject(propertiesOf(b)[discriminator!])!.const)).join(' or ')}`
          : undefined;
      fields.push({ path, schema: child, required: required.has(name), ...(when ? { when } : {}) });
      fields.push(...fieldsInside(child, path));
    }
  }
  return fields;
}

/**
 * Whether a field is marked secret (on itself or on an optional/union member), or is a list of
 * secrets (`z.array(secret())`).
 */
export function isSecretField(schema: JsonSchema): boolean {
  if (schema.secret === true) return true;
  const members = [schema.anyOf, schema.oneOf].flatMap((m) => (Array.isArray(m) ? m : []));
  if (members.some((m) => asObject(m)?.secret === true)) return true;
  const items = arrayItems(schema);
  return items !== undefined && isSecretField(items);
}

export function fieldDescription(schema: JsonSchema): string | undefined {
  if (typeof schema.description === 'string' && schema.description.trim()) return schema.description;
  const members = [schema.anyOf, schema.oneOf].flatMap((m) => (Array.isArray(m) ? m : []));
  for (const m of members) {
    const d = asObject(m)?.description;
    if (typeof d === 'string' && d.trim()) return d;
  }
  return undefined;
}

/** A short type for docs: `string`, `integer`, `duration`, `"a" | "b"`, `string[]` … */
export function fieldType(schema: JsonSchema): string {
  if (schema.format === 'duration') return 'duration';
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const members = [schema.anyOf, schema.oneOf].flatMap((m) => (Array.isArray(m) ? m : []));
  if (members.length > 0) {
    return [...new Set(members.map((m) => fieldType(asObject(m) ?? {})))].join(' | ');
  }
  const type = schema.type;
  if (Array.isArray(type)) return type.join(' | ');
  if (type === 'array') return `${fieldType(asObject(schema.items) ?? {})}[]`;
  if (type === 'string' && schema.format === 'uri') return 'URL';
  if (typeof type === 'string') return type;
  return 'any';
}

/** The keys of a path: names, `[]` (every item of an array) and `[2]` (one item). */
function pathKeys(path: string): string[] {
  return path.match(/[^.[\]]+|\[\d*\]/g) ?? [];
}

/**
 * The value at a path of a plain object (`auth.client_secret`, `rules[0].match`), if any. A path
 * through every item of an array (`rules[].match`) has more than one value: see valuesAt.
 */
export function valueAt(value: unknown, path: string): unknown {
  let current = value;
  for (const key of pathKeys(path)) {
    if (!current || typeof current !== 'object' || key === '[]') return undefined;
    const index = /^\[(\d+)\]$/.exec(key);
    if (index && !Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[index ? Number(index[1]) : key];
  }
  return current;
}

/**
 * The values at a path, `[]` standing for every item of an array, each with its own path
 * (`rules[].match` gives `rules[0].match`, `rules[1].match` …). Paths that lead nowhere give nothing.
 */
export function valuesAt(value: unknown, path: string): Array<{ path: string; value: unknown }> {
  let found: Array<{ path: string; value: unknown }> = [{ path: '', value }];
  for (const key of pathKeys(path)) {
    found = found.flatMap(({ path: at, value: current }) => {
      if (key === '[]') {
        return Array.isArray(current) ? current.map((item, i) => ({ path: `${at}[${i}]`, value: item })) : [];
      }
      const next = valueAt(current, key);
      return next === undefined
        ? []
        : [{ path: key.startsWith('[') ? `${at}${key}` : at ? `${at}.${key}` : key, value: next }];
    });
  }
  return found;
}

/**
 * The default of each field of a config schema, as a user writes it, by path. zod's input-mode
 * JSON Schema drops a `.default()` placed after a transform (duration(), URL normalisers), whose
 * value is of the output type: those are read from the output-mode export, durations written back
 * as `30s` (URLs export as strings already).
 */
export function fieldDefaults(configSchema: z.ZodType): Map<string, unknown> {
  const defaults = new Map<string, unknown>();
  let output: JsonSchema | undefined;
  try {
    output = z.toJSONSchema(configSchema, { io: 'output', unrepresentable: 'any' }) as JsonSchema;
  } catch {
    output = undefined;
  }
  for (const field of output ? schemaFields(output) : []) {
    const value = field.schema.default;
    if (value === undefined) continue;
    const isDuration = field.schema.format === 'duration' && typeof value === 'number';
    defaults.set(field.path, isDuration ? formatDuration(value) : value);
  }
  const input = z.toJSONSchema(configSchema, { io: 'input' }) as JsonSchema;
  for (const field of schemaFields(input)) {
    if (field.schema.default !== undefined) defaults.set(field.path, field.schema.default);
  }
  return defaults;
}
