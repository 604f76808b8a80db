import { isConnectorDefinition, type ConnectorDefinition } from '../plugin-api/index.ts';

/**
 * The connector types this runtime knows: the first-party ones listed statically in
 * connectors/index.ts plus those exported by the npm packages named under `plugins:`.
 * Nothing scans the file system.
 */
export class ConnectorRegistry {
  readonly #byId = new Map<string, ConnectorDefinition>();

  constructor(definitions: Iterable<ConnectorDefinition> = []) {
    for (const definition of definitions) this.add(definition);
  }

  add(definition: ConnectorDefinition, origin = 'built-in'): void {
    const id = definition.manifest.id;
    if (this.#byId.has(id)) throw new Error(`connector id "${id}" from ${origin} is already registered`);
    this.#byId.set(id, definition);
  }

  get(id: string): ConnectorDefinition | undefined {
    return this.#byId.get(id);
  }

  ids(): string[] {
    return [...this.#byId.keys()].sort();
  }

  list(): ConnectorDefinition[] {
    return this.ids().map((id) => this.#byId.get(id) as ConnectorDefinition);
  }

  /** A copy narrowed to some ids (for tests and tools). */
  with(ids: readonly string[]): ConnectorRegistry {
    return new ConnectorRegistry(this.list().filter((d) => ids.includes(d.manifest.id)));
  }
}

/** What a plugin package may export: a definition, an array of them, or `{ connectors: [...] }`. */
export function definitionsFromModule(mod: Record<string, unknown>): ConnectorDefinition[] {
  const candidates: unknown[] = [];
  for (const value of [mod.default, mod.connectors, ...Object.values(mod)]) {
    if (Array.isArray(value)) candidates.push(...value);
    else if (
      value &&
      typeof value === 'object' &&
      Array.isArray((value as { connectors?: unknown }).connectors)
    ) {
      candidates.push(...(value as { connectors: unknown[] }).connectors);
    } else candidates.push(value);
  }
  return [...new Set(candidates.filter(isConnectorDefinition))];
}

/** Imports the plugin packages and adds their connectors; returns one message per failure. */
export async function loadPlugins(
  registry: ConnectorRegistry,
  packages: readonly string[],
  importer: (specifier: string) => Promise<Record<string, unknown>> = (s) => import(s),
): Promise<Array<{ index: number; message: string }>> {
  const failures: Array<{ index: number; message: string }> = [];
  for (const [index, name] of packages.entries()) {
    try {
      const definitions = definitionsFromModule(await importer(name));
      if (definitions.length === 0) {
        failures.push({
          index,
          message: `package "${name}" exports no connector definition (use defineConnector)`,
        });
      }
      for (const definition of definitions) registry.add(definition, `plugin "${name}"`);
    } catch (err) {
      failures.push({ index, message: `cannot load plugin "${name}": ${(err as Error).message}` });
    }
  }
  return failures;
}
