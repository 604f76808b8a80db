/** Reading a connector's config JSON Schema (zod's input-mode export) field by field. */

export type JsonSchema = Record<string, unknown>;

export interface SchemaField {
  /** Dotted path, e.g. `auth.client_secret`. */
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

/** Every property, nested ones included, in declaration order. */
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
      fields.push(...schemaFields(child, path));
    }
  }
  return fields;
}

/** Whether a field is marked secret (on itself or on an optional/union member). */
export function isSecretField(schema: JsonSchema): boolean {
  if (schema.secret === true) return true;
  const members = [schema.anyOf, schema.oneOf].flatMap((m) => (Array.isArray(m) ? m : []));
  return members.some((m) => asObject(m)?.secret === true);
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

/** The value at a dotted path of a plain object, if any. */
export function valueAt(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (!current || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
