/**
 * The Configuration table of the generated reference against what the config schemas do: every
 * default a config gets shows (in the form a user writes it), fields inside arrays are listed, and
 * the catalog's order does not depend on the locale of whoever runs `npm run docs`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { firstPartyConnectors } from '../../connectors/index.ts';
import { duration, secret, z, type ConnectorDefinition } from '../../core/plugin-api/index.ts';
import { renderIndex, renderReference } from '../../core/plugin-api/testing/docs.ts';
import {
  fieldDefaults,
  isSecretField,
  schemaFields,
  valueAt,
  valuesAt,
  type JsonSchema,
} from '../../core/plugin-api/testing/schema-walk.ts';
import type { SuiteContext } from '../../core/plugin-api/testing/context.ts';
import { configSecrets, SECRET_NAME } from '../../core/plugin-api/testing/static-checks.ts';
import { docSources } from './generate.ts';

const documented: readonly ConnectorDefinition[] = [
  ...firstPartyConnectors,
  ...(docSources.packages ?? []).map((p) => p.definition),
];

/** The Configuration table of a reference page: path → the text of its default cell. */
function defaultCells(page: string): Map<string, string> {
  const cells = new Map<string, string>();
  const section = page.slice(page.indexOf('## Configuration'), page.indexOf('## Events'));
  for (const line of section.split('\n')) {
    const columns = line.split(/(?<!\\)\|/).map((c) => c.trim());
    const path = /^`(.+)`$/.exec(columns[1] ?? '')?.[1];
    if (path !== undefined) cells.set(path, columns[4] ?? '');
  }
  return cells;
}

const clone = <T>(value: T): T => structuredClone(value);

/** Every key path of a config, outer ones first (array items are entered, not removed). */
function keyPaths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (!value || typeof value !== 'object') return [];
  if (Array.isArray(value)) return value.flatMap((item, i) => keyPaths(item, [...prefix, i]));
  return Object.entries(value).flatMap(([key, child]) => [
    [...prefix, key],
    ...keyPaths(child, [...prefix, key]),
  ]);
}

function parentAt(
  value: unknown,
  path: Array<string | number>,
): Record<string | number, unknown> | undefined {
  let current = value;
  for (const key of path.slice(0, -1)) {
    if (!current || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current && typeof current === 'object' ? (current as Record<string | number, unknown>) : undefined;
}

/** An example config with every key it can do without removed: what is left is what is required. */
function minimalConfig(definition: ConnectorDefinition, example: unknown): unknown {
  let current = clone(example);
  for (const path of keyPaths(example)) {
    const candidate = clone(current);
    const parent = parentAt(candidate, path);
    const key = path.at(-1)!;
    if (!parent || Array.isArray(parent) || !(key in parent)) continue;
    delete parent[key];
    if (definition.configSchema.safeParse(candidate).success) current = candidate;
  }
  return current;
}

/** A config with one value set at a concrete path such as `alerts.overlap` or `rules[0].claims`. */
function withValueAt(config: unknown, path: string, value: unknown): unknown {
  const result = clone(config) as Record<string, unknown>;
  const keys = (path.match(/[^.[\]]+|\[\d+\]/g) ?? []).map((k) =>
    k.startsWith('[') ? Number(k.slice(1, -1)) : k,
  );
  let current: Record<string | number, unknown> = result;
  for (const [i, key] of keys.entries()) {
    if (i === keys.length - 1) current[key] = value;
    else {
      current[key] ??= {};
      current = current[key] as Record<string | number, unknown>;
    }
  }
  return result;
}

describe('defaults in the generated reference', () => {
  it.each(documented.map((d) => [d.manifest.id, d] as const))(
    '%s: every field a minimal config gets a value for shows that default',
    (_id, definition) => {
      const cells = defaultCells(renderReference(definition));
      const fields = schemaFields(z.toJSONSchema(definition.configSchema, { io: 'input' }) as JsonSchema);
      const examples = definition.examples ?? [];
      expect(examples.length, 'no example config to start from').toBeGreaterThan(0);
      const missing: string[] = [];
      const wrong: string[] = [];
      for (const example of examples) {
        const config = minimalConfig(definition, example.config);
        const parsed = definition.configSchema.parse(config);
        for (const field of fields) {
          for (const { path, value } of valuesAt(parsed, field.path)) {
            if (value === undefined || valueAt(config, path) !== undefined) continue;
            const cell = cells.get(field.path) ?? '';
            if (cell === '') {
              missing.push(`${field.path} (${example.title})`);
              continue;
            }
            // The default as documented, written into the config, gives the same value.
            const shown: unknown = JSON.parse(cell.slice(1, -1).replace(/\\\|/g, '|'));
            const reparsed = definition.configSchema.safeParse(withValueAt(config, path, shown));
            const got = reparsed.success ? JSON.stringify(valueAt(reparsed.data, path)) : 'invalid';
            if (got !== JSON.stringify(value))
              wrong.push(`${field.path}: ${cell} gives ${got}, not ${JSON.stringify(value)}`);
          }
        }
      }
      expect([...new Set(missing)], 'fields with a default the reference leaves blank').toEqual([]);
      expect([...new Set(wrong)], 'documented defaults that are not the real ones').toEqual([]);
    },
  );

  it('are written as a user writes them, also after a transform: durations as 30s, URLs as text', () => {
    const schema = z.strictObject({
      request_timeout: duration('Deadline.').default(30_000),
      poll_interval: duration('How often.').prefault('15m'),
      api_url: z
        .url()
        .transform((u) => new URL(u))
        .default(new URL('https://api.example.com/v1'))
        .meta({ description: 'Endpoint.' }),
      page_size: z.number().default(100).meta({ description: 'Per page.' }),
      items: z
        .array(z.strictObject({ wait: duration('Wait.').default(1500) }))
        .optional()
        .meta({ description: 'Items.' }),
    });
    expect(Object.fromEntries(fieldDefaults(schema))).toEqual({
      request_timeout: '30s',
      poll_interval: '15m',
      api_url: 'https://api.example.com/v1',
      page_size: 100,
      'items[].wait': '1500ms',
    });
  });
});

describe('the connector catalog', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is in code-point order of the ids, whatever the locale', () => {
    const ids = (table: string) =>
      [...table.matchAll(/^\| \[[^\]]*\]\([^)]*\) \| `([^`]+)`/gm)].map((m) => m[1]);
    const codePoint = firstPartyConnectors.map((d) => d.manifest.id).sort();
    // Lithuanian collation puts y with i: syslog-cef before slack.
    const lithuanian = new Intl.Collator('lt');
    expect([...codePoint].sort(lithuanian.compare), 'the locale would change nothing').not.toEqual(codePoint);
    // As under LC_ALL=lt_LT.UTF-8: every locale-aware comparison collates the Lithuanian way.
    vi.spyOn(String.prototype, 'localeCompare').mockImplementation(function (this: string, that: string) {
      return lithuanian.compare(this, that);
    });
    expect(ids(renderIndex(firstPartyConnectors))).toEqual(codePoint);
  });
});

describe('config fields inside arrays', () => {
  const schema = z.strictObject({
    rules: z
      .array(
        z.strictObject({
          name: z.string().meta({ description: 'Name.' }),
          token: secret('A token.').optional(),
          examples: z
            .array(z.strictObject({ matches: z.boolean().default(true).meta({ description: 'Match.' }) }))
            .optional()
            .meta({ description: 'Examples.' }),
        }),
      )
      .meta({ description: 'Rules.' }),
    api_keys: z.array(secret('A key.')).optional().meta({ description: 'Keys.' }),
  });
  const fields = schemaFields(z.toJSONSchema(schema, { io: 'input' }) as JsonSchema);

  it('are walked as path[].field, arrays of arrays included', () => {
    expect(fields.map((f) => [f.path, f.required])).toEqual([
      ['rules', true],
      ['rules[].name', true],
      ['rules[].token', false],
      ['rules[].examples', false],
      ['rules[].examples[].matches', false],
      ['api_keys', false],
    ]);
  });

  it('are secret when declared with secret(), a list of secrets included', () => {
    const secrets = fields.filter((f) => isSecretField(f.schema)).map((f) => f.path);
    expect(secrets).toEqual(['rules[].token', 'api_keys']);
  });

  it('have one value per item', () => {
    const config = {
      rules: [
        { name: 'a', examples: [{}, { matches: false }] },
        { name: 'b', token: 't' },
      ],
    };
    expect(valuesAt(config, 'rules[].name')).toEqual([
      { path: 'rules[0].name', value: 'a' },
      { path: 'rules[1].name', value: 'b' },
    ]);
    expect(valuesAt(config, 'rules[].token')).toEqual([{ path: 'rules[1].token', value: 't' }]);
    expect(valuesAt(config, 'rules[].examples[].matches')).toEqual([
      { path: 'rules[0].examples[1].matches', value: false },
    ]);
    expect(valueAt(config, 'rules[1].token')).toBe('t');
    expect(valueAt(config, 'rules[].token')).toBeUndefined();
  });
});

describe('the config.secrets case, for credentials inside arrays', () => {
  /** What configSecrets reads of the kit's context: the schema and the valid config. */
  const context = (configSchema: z.ZodType, raw: unknown) =>
    ({
      definition: { configSchema },
      options: {},
      rawConfig: () => raw,
      parsedConfig: () => configSchema.parse(raw),
    }) as unknown as SuiteContext;
  const targets = (target: z.ZodType) =>
    z.strictObject({ targets: z.array(z.strictObject({ url: z.string(), authorization: target })) });

  it('passes secrets declared with secret(), one per item or a list of them', () => {
    const raw = {
      targets: [
        { url: 'a', authorization: 'Bearer one' },
        { url: 'b', authorization: 'Bearer two' },
      ],
    };
    expect(() => configSecrets(context(targets(secret('Header value.')), raw))).not.toThrow();
    const keys = z.strictObject({ api_keys: z.array(secret('A key.')).meta({ description: 'Keys.' }) });
    expect(() => configSecrets(context(keys, { api_keys: ['key-one', 'key-two'] }))).not.toThrow();
  });

  it('finds a credential inside an array that is not declared secret', () => {
    const raw = { targets: [{ url: 'a', authorization: 'Bearer one' }] };
    expect(() => configSecrets(context(targets(z.string().meta({ description: 'Header.' })), raw))).toThrow(
      'targets[].authorization looks like a credential',
    );
  });

  it('finds an item marked secret that does not validate to a Secret', () => {
    const leaky = z.string().meta({ secret: true, description: 'Header value.' });
    const raw = {
      targets: [
        { url: 'a', authorization: 'Bearer one' },
        { url: 'b', authorization: 'Bearer two' },
      ],
    };
    expect(() => configSecrets(context(targets(leaky), raw))).toThrow(
      /targets\[0\]\.authorization is marked secret[\s\S]*targets\[1\]\.authorization is marked secret/,
    );
  });
});

describe('names the kit takes for credentials', () => {
  it.each([
    'client_secret',
    'token',
    'api_key',
    'api_keys',
    'tokens',
    'authorization',
    'authorization_header',
    'connection_string',
    'access_key_id',
    'privateKey',
  ])('%s', (name) => expect(SECRET_NAME.test(name)).toBe(true));

  it.each(['client_id', 'token_url', 'authorization_endpoint', 'key_id', 'keyboard', 'page_size'])(
    'not %s',
    (name) => expect(SECRET_NAME.test(name)).toBe(false),
  );
});
