import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isConnectorDefinition, type ConnectorDefinition } from '../plugin-api/index.ts';

/**
 * The connector types this runtime knows: the first-party ones listed statically in
 * connectors/index.ts plus those exported by the packages and files named under `plugins:`
 * (found as {@link resolvePlugin} says). Nothing scans the file system.
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

/** Resolves and imports the `plugins:` entries and adds their connectors; one message per failure. */
export async function loadPlugins(
  registry: ConnectorRegistry,
  entries: readonly string[],
  options: PluginSearch & { importer?: (url: string) => Promise<Record<string, unknown>> } = {},
): Promise<Array<{ index: number; message: string }>> {
  const importer = options.importer ?? ((url: string) => import(url) as Promise<Record<string, unknown>>);
  const failures: Array<{ index: number; message: string }> = [];
  for (const [index, entry] of entries.entries()) {
    const found = resolvePlugin(entry, options);
    if (!found.ok) {
      failures.push({ index, message: `cannot load plugin "${entry}": ${found.message}` });
      continue;
    }
    try {
      const definitions = definitionsFromModule(await importer(found.url));
      if (definitions.length === 0) {
        failures.push({
          index,
          message: `plugin "${entry}" (${found.from}) exports no connector definition (use defineConnector)`,
        });
      }
      for (const definition of definitions) registry.add(definition, `plugin "${entry}"`);
    } catch (err) {
      failures.push({
        index,
        message: `cannot load plugin "${entry}" (${found.from}): ${(err as Error).message}`,
      });
    }
  }
  return failures;
}

/** Where plugin entries are looked for, in order; see {@link resolvePlugin}. */
export interface PluginSearch {
  /** Folder of the config file: relative paths are taken from it, and packages looked for first. */
  configDir?: string | undefined;
  /** The working directory (default: process.cwd()). */
  cwd?: string;
  /** Where the bridge itself is installed (default: this file's folder), for bundled packages. */
  bridgeDir?: string;
}

export type PluginResolution = { ok: true; url: string; from: string } | { ok: false; message: string };

const BRIDGE_DIR = dirname(fileURLToPath(import.meta.url));
/** The conditions Node's ESM resolver matches in a package's `exports` for `import()`. */
const IMPORT_CONDITIONS = new Set(['node', 'import', 'default']);

/**
 * Where a `plugins:` entry is, as a file URL to import, the way an operator expects it:
 * - a path (`./x`, `../x`, `/abs/x`, `file:` URL) is taken from the config file's folder: a file,
 *   or a package folder (its `exports`, else its `main`);
 * - a package name (`pkg`, `@scope/pkg`, `pkg/subpath`) is looked for in the node_modules
 *   folders of the config file's folder, then of the working directory, then of the bridge's own
 *   location (each with the node_modules folders above them, as Node does), resolved through its
 *   `exports` with the conditions of an ES module import.
 */
export function resolvePlugin(entry: string, search: PluginSearch = {}): PluginResolution {
  const cwd = search.cwd ?? process.cwd();
  const base = search.configDir ?? cwd;
  const baseName = search.configDir ? "the config file's folder" : 'the working directory';
  if (/^file:/i.test(entry) || isAbsolute(entry) || /^\.\.?([\\/]|$)/.test(entry)) {
    let path: string;
    try {
      path = /^file:/i.test(entry) ? fileURLToPath(entry) : resolve(base, entry);
    } catch {
      return { ok: false, message: `"${entry}" is not a valid file URL` };
    }
    const relativeNote =
      isAbsolute(entry) || /^file:/i.test(entry) ? '' : ` (relative to ${baseName} ${base})`;
    if (!existsSync(path)) {
      return {
        ok: false,
        message: `${path} does not exist${relativeNote}; fix the path, or name an installed package instead`,
      };
    }
    if (statSync(path).isDirectory()) {
      if (!existsSync(join(path, 'package.json'))) {
        return {
          ok: false,
          message: `${path} is a folder without a package.json${relativeNote}; name the connector's entry file, or the folder of its package`,
        };
      }
      try {
        const file = packageEntry(path, '.');
        if (file === undefined)
          return {
            ok: false,
            message: `${path}: its package.json names no entry file (exports or main) that exists`,
          };
        return { ok: true, url: pathToFileURL(file).href, from: path };
      } catch (err) {
        return { ok: false, message: `${path}: ${(err as Error).message}` };
      }
    }
    return { ok: true, url: pathToFileURL(path).href, from: path };
  }

  const name = packageName(entry);
  if (name === undefined) {
    return {
      ok: false,
      message: `"${entry}" is neither a package name nor a path (write ./${entry} for a path)`,
    };
  }
  const subpath = `.${entry.slice(name.length)}`;
  const places: Array<[string, string]> = [];
  if (search.configDir) places.push([resolve(search.configDir), "the config file's folder"]);
  places.push([resolve(cwd), 'the working directory']);
  places.push([resolve(search.bridgeDir ?? BRIDGE_DIR), "the bridge's own location"]);
  const looked: string[] = [];
  for (const [start, label] of places) {
    if (looked.some((l) => l.startsWith(`${start} (`))) continue;
    const found = findPackage(start, name);
    if (found === undefined) {
      looked.push(`${start} (${label})`);
      continue;
    }
    try {
      const file = packageEntry(found, subpath);
      if (file === undefined) {
        return {
          ok: false,
          message: `package "${name}" at ${found} has no entry file for "${entry}" (its package.json names none that exists)`,
        };
      }
      return { ok: true, url: pathToFileURL(file).href, from: found };
    } catch (err) {
      return { ok: false, message: `package "${name}" at ${found}: ${(err as Error).message}` };
    }
  }
  const install = search.configDir ?? cwd;
  return {
    ok: false,
    message:
      `no package "${name}" in the node_modules folders of ${looked.join(', ')}, nor of the folders above them; ` +
      `install it next to the config file (cd ${install} && npm install ${name}), ` +
      `or name its folder or entry file by a path relative to the config file (./path/to/it)`,
  };
}

/** `pkg` of `pkg/sub`, `@scope/pkg` of `@scope/pkg/sub`; undefined when not a package name. */
function packageName(specifier: string): string | undefined {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  if (!name || (specifier.startsWith('@') && parts.length < 2)) return undefined;
  if (name.startsWith('.') || name.includes('\\') || name.includes('%') || /^[a-z]:/i.test(name))
    return undefined;
  return name;
}

/** The package folder Node's resolver finds from `start`: the first `node_modules/<name>` above it. */
function findPackage(start: string, name: string): string | undefined {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    if (basename(dir) !== 'node_modules') {
      const candidate = join(dir, 'node_modules', name);
      if (isDirectory(candidate)) return candidate;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The file a package exposes at `subpath` (`.` or `./x`) to an ES module import: Node's
 * PACKAGE_EXPORTS_RESOLVE when the package has `exports`, else its `main` (LEGACY_MAIN_RESOLVE)
 * or the file at the subpath. Throws when `exports` does not export the subpath.
 */
function packageEntry(dir: string, subpath: string): string | undefined {
  const manifestFile = join(dir, 'package.json');
  let manifest: { exports?: unknown; main?: unknown } = {};
  if (existsSync(manifestFile)) {
    try {
      manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as typeof manifest;
    } catch {
      throw new Error(`${manifestFile} is not valid JSON`);
    }
  }
  if (manifest.exports !== undefined && manifest.exports !== null) {
    const target = exportsTarget(manifest.exports, subpath);
    if (target === undefined) {
      throw new Error(
        subpath === '.'
          ? 'its package.json "exports" has no entry for import (conditions node, import or default)'
          : `its package.json "exports" does not export "${subpath}" for import`,
      );
    }
    const file = resolve(dir, target);
    if (relative(dir, file).startsWith('..'))
      throw new Error(`its "exports" point outside the package (${target})`);
    return isFile(file) ? file : undefined;
  }
  if (subpath !== '.') {
    const file = resolve(dir, subpath);
    return isFile(file) ? file : undefined;
  }
  const main = typeof manifest.main === 'string' && manifest.main !== '' ? manifest.main : undefined;
  const guesses = main
    ? [
        main,
        `${main}.js`,
        `${main}.json`,
        `${main}.node`,
        `${main}/index.js`,
        `${main}/index.json`,
        `${main}/index.node`,
      ]
    : [];
  guesses.push('index.js', 'index.json', 'index.node');
  return guesses.map((g) => resolve(dir, g)).find(isFile);
}

/** The relative target `exports` gives `subpath` under the import conditions, or undefined. */
function exportsTarget(exports: unknown, subpath: string): string | undefined {
  const isSubpathMap =
    typeof exports === 'object' &&
    exports !== null &&
    !Array.isArray(exports) &&
    Object.keys(exports).some((k) => k.startsWith('.'));
  if (isSubpathMap) {
    const keys = Object.keys(exports as object);
    if (keys.some((k) => !k.startsWith('.'))) {
      throw new Error('its package.json "exports" mixes subpaths ("./x") with conditions; it is invalid');
    }
    const map = exports as Record<string, unknown>;
    if (Object.hasOwn(map, subpath) && !subpath.includes('*'))
      return conditionalTarget(map[subpath], undefined);
    // The longest pattern (`./x/*`) matching the subpath wins, as in Node's PATTERN_KEY_COMPARE.
    const patterns = keys
      .filter((k) => k.split('*').length === 2)
      .filter((k) => {
        const [prefix = '', suffix = ''] = k.split('*');
        return (
          subpath.startsWith(prefix) &&
          subpath.length >= k.length &&
          subpath.endsWith(suffix) &&
          subpath !== prefix
        );
      })
      .sort((a, b) => b.indexOf('*') - a.indexOf('*') || b.length - a.length);
    const key = patterns[0];
    if (key === undefined) return undefined;
    const [prefix = '', suffix = ''] = key.split('*');
    return conditionalTarget(map[key], subpath.slice(prefix.length, subpath.length - suffix.length));
  }
  return subpath === '.' ? conditionalTarget(exports, undefined) : undefined;
}

/** PACKAGE_TARGET_RESOLVE: a string, an array of fallbacks, or an object of conditions. */
function conditionalTarget(target: unknown, patternMatch: string | undefined): string | undefined {
  if (typeof target === 'string') {
    if (!target.startsWith('./')) return undefined;
    return patternMatch === undefined ? target : target.replaceAll('*', patternMatch);
  }
  if (Array.isArray(target)) {
    for (const option of target) {
      const found = conditionalTarget(option, patternMatch);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof target === 'object' && target !== null) {
    for (const [condition, value] of Object.entries(target)) {
      if (!IMPORT_CONDITIONS.has(condition)) continue;
      const found = conditionalTarget(value, patternMatch);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
