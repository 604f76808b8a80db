import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/index.ts';
import { nearest } from '../../config/suggest.ts';
import { deliveryConfigSchema } from '../../delivery/config.ts';
import { defaultTxn } from '../../delivery/jti.ts';
import {
  isBridgeError,
  type EventDraft,
  type InboundDefinition,
  type MappingResult,
} from '../../plugin-api/index.ts';
import { defaultRegistry } from '../../runtime/defaults.ts';
import { validateDraft } from '../../runtime/ssf-adapters.ts';
import { findEventType } from '../../ssf/index.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';
import { loadCliConfig } from '../load-config.ts';

interface SimulateOptions {
  connector: string;
  config?: string;
  instance?: string;
  json?: boolean;
  fixture?: boolean;
}

/** Where the connector's settings came from, and the instance id the events are attributed to. */
interface ConnectorSetup {
  definition: InboundDefinition;
  config: unknown;
  instanceId: string;
  source: string;
  hold: { enabled: boolean; toleranceMs: number };
}

/** One event as simulate prints it: what the connector would hand to the pipeline. */
export interface SimulatedEvent {
  type: string;
  subject: Record<string, unknown>;
  claims: Record<string, unknown>;
  txn: string;
  source_record_id: string;
  occurred_at?: string;
  severity?: string;
  /** Set when the pipeline would hold the event until its future occurred-at. */
  scheduled_for?: string;
}

type Note =
  | { file: string; ignored: string }
  | { file: string; rejected: string }
  | { config: string }
  /** Several instances use the connector and --instance chose none: the one used, and all of them. */
  | { connector: string; instance: string; instances: string[] };

function printNote(io: CliIo, json: boolean | undefined, note: Note): void {
  if (json) io.err(JSON.stringify(note));
  else if ('config' in note) io.err(`simulating with ${note.config}`);
  else if ('instances' in note) {
    io.err(
      `${note.instances.length} instances use ${note.connector}; using "${note.instance}" (choose with --instance)`,
    );
  } else if ('ignored' in note) io.err(`${note.file}: ignored: ${note.ignored}`);
  else io.err(`${note.file}: rejected: ${note.rejected}`);
}

function rejected(io: CliIo, json: boolean | undefined, file: string, reason: string): never {
  printNote(io, json, { file, rejected: reason });
  throw new CliExit(EXIT.invalid, '');
}

function inboundDefinition(
  id: string,
  ids: string[],
  found: unknown,
  withConfig: boolean,
): InboundDefinition {
  const definition = found as InboundDefinition | { kind: 'outbound' } | undefined;
  if (definition === undefined) {
    const hint = nearest(id, ids);
    // Without --config only the bundled connectors are known: a package is loaded through plugins:.
    const plugin = withConfig
      ? ''
      : '; a connector package is found through --config FILE naming it under plugins:';
    throw new CliExit(
      EXIT.invalid,
      `unknown connector "${id}"${hint ? `; did you mean "${hint}"?` : ''}${plugin} (see: ssf-bridge connectors list)`,
    );
  }
  if (definition.kind !== 'inbound') {
    throw new CliExit(EXIT.invalid, `"${id}" is an outbound connector; simulate runs inbound mappings`);
  }
  if (typeof definition.map !== 'function') {
    throw new CliExit(EXIT.invalid, `connector "${id}" has no pure mapping (map) to simulate`);
  }
  return definition;
}

/** The instance of a loaded config that uses the connector (the one named by --instance). */
function fromInstance(loaded: LoadedConfig, options: SimulateOptions, io: CliIo): ConnectorSetup {
  const candidates = loaded.instances.filter(
    (i) => i.kind === 'inbound' && i.definition.manifest.id === options.connector,
  );
  const chosen =
    options.instance === undefined ? candidates[0] : candidates.find((i) => i.id === options.instance);
  if (chosen === undefined) {
    const named = options.instance === undefined ? '' : ` with id "${options.instance}"`;
    throw new CliExit(
      EXIT.invalid,
      `no inbound instance${named} in ${options.config} uses connector "${options.connector}"`,
    );
  }
  if (options.instance === undefined && candidates.length > 1) {
    printNote(io, options.json, {
      connector: options.connector,
      instance: chosen.id,
      instances: candidates.map((i) => i.id),
    });
  }
  const future = loaded.root.delivery.future_events;
  return {
    definition: chosen.definition as InboundDefinition,
    config: chosen.config,
    instanceId: chosen.id,
    source: `the config of instance "${chosen.id}" in ${options.config}`,
    hold: { enabled: future.hold, toleranceMs: future.tolerance },
  };
}

/** Without a config file: the connector's defaults, else its first example that validates. */
function fromDefaults(definition: InboundDefinition): ConnectorSetup {
  const future = deliveryConfigSchema.parse(undefined).future_events;
  const base = {
    definition,
    instanceId: definition.manifest.id,
    hold: { enabled: future.hold, toleranceMs: future.tolerance },
  };
  const defaults = definition.configSchema.safeParse({});
  if (defaults.success) return { ...base, config: defaults.data, source: 'its default config' };
  for (const example of definition.examples ?? []) {
    const parsed = definition.configSchema.safeParse(example.config);
    if (parsed.success)
      return { ...base, config: parsed.data, source: `its example config "${example.title}"` };
  }
  throw new CliExit(
    EXIT.invalid,
    `connector "${definition.manifest.id}" needs settings to map payloads: give --config FILE with an instance that uses it`,
  );
}

async function setupFor(options: SimulateOptions, io: CliIo): Promise<ConnectorSetup> {
  if (options.config === undefined) {
    if (options.instance !== undefined) throw new CliExit(EXIT.invalid, '--instance needs --config');
    const registry = defaultRegistry();
    return fromDefaults(
      inboundDefinition(options.connector, registry.ids(), registry.get(options.connector), false),
    );
  }
  const loaded = await loadCliConfig(options.config, io);
  inboundDefinition(options.connector, loaded.registry.ids(), loaded.registry.get(options.connector), true);
  return fromInstance(loaded, options, io);
}

/** A connector fixture (`{description, input, expect}`) stands for its input. */
function unwrapFixture(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const keys = Object.keys(value).sort().join(',');
  return keys === 'description,expect,input' ? (value as { input: unknown }).input : value;
}

/**
 * A payload as the connector's mapping takes it: parsed JSON, or the text itself for other
 * formats (a CSV export). A `.json` file that does not parse is refused rather than passed on.
 */
export function parsePayload(
  text: string,
  name: string,
): { ok: true; record: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, record: unwrapFixture(JSON.parse(text)) };
  } catch (err) {
    if (extname(name).toLowerCase() === '.json') {
      return { ok: false, reason: `not valid JSON (${(err as Error).message})` };
    }
    return { ok: true, record: text };
  }
}

async function readPayload(file: string, io: CliIo): Promise<string> {
  if (file === '-') return io.readStdin();
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CliExit(
      EXIT.invalid,
      `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
}

function emitsAllowed(definition: InboundDefinition): Set<string> | 'any' {
  const emits = definition.manifest.emits ?? [];
  if (emits.includes('*')) return 'any';
  return new Set(emits.map((name) => findEventType(name)?.uri ?? name));
}

function occurredAtText(value: EventDraft['occurredAt']): string | undefined {
  if (value === undefined) return undefined;
  const at = value instanceof Date ? value : new Date(value);
  return Number.isNaN(at.getTime()) ? String(value) : at.toISOString();
}

/**
 * Checks one mapped draft the way the pipeline will (catalog, subject, claims, a source record
 * id) and shapes it for printing; returns the problems instead when it would be refused.
 */
export function simulateEvent(
  draft: EventDraft,
  setup: Pick<ConnectorSetup, 'instanceId' | 'hold'>,
  allowed: Set<string> | 'any',
  now: Date,
): { ok: true; event: SimulatedEvent } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  if (typeof draft?.sourceRecordId !== 'string' || draft.sourceRecordId.length === 0) {
    problems.push('sourceRecordId: must be a non-empty string');
  }
  const checked = validateDraft(draft);
  if (!checked.ok) problems.push(...checked.problems.map((p) => `${p.path || '(event)'}: ${p.message}`));
  if (checked.ok && allowed !== 'any' && !allowed.has(checked.event.type)) {
    problems.push(`type: ${checked.event.type} is not listed in the connector's manifest (emits)`);
  }
  if (!checked.ok || problems.length > 0) return { ok: false, problems };
  const event = checked.event;
  const occurredAt = occurredAtText(event.occurredAt);
  const held =
    setup.hold.enabled &&
    occurredAt !== undefined &&
    new Date(occurredAt).getTime() > now.getTime() + setup.hold.toleranceMs;
  return {
    ok: true,
    event: {
      type: event.type,
      subject: event.subject,
      claims: event.claims ?? {},
      txn: event.txn ?? defaultTxn(setup.instanceId, event.sourceRecordId),
      source_record_id: event.sourceRecordId,
      ...(occurredAt !== undefined ? { occurred_at: occurredAt } : {}),
      ...(event.severity !== undefined ? { severity: event.severity } : {}),
      ...(held ? { scheduled_for: occurredAt } : {}),
    },
  };
}

/**
 * What a fixture file (fixtures/<case>.json) expects of this payload: the events exactly as the
 * mapping returned them (the kit compares those, not the SET claims), or the ignore reason.
 */
function fixtureExpectation(
  result: MappingResult<unknown>,
  setup: ConnectorSetup,
  allowed: Set<string> | 'any',
  name: string,
  io: CliIo,
  options: SimulateOptions,
): Record<string, unknown> {
  if (result.ignored !== undefined) return { ignored: result.ignored };
  const now = new Date();
  for (const [index, draft] of result.events.entries()) {
    const checked = simulateEvent(draft, setup, allowed, now);
    if (!checked.ok)
      rejected(io, options.json, name, `event ${index} is invalid: ${checked.problems.join('; ')}`);
  }
  return { events: JSON.parse(JSON.stringify(result.events)) as unknown };
}

function fixtureText(name: string, input: unknown, expectation: Record<string, unknown>): string {
  return JSON.stringify({ description: `Mapped from ${name}`, input, expect: expectation }, null, 2);
}

function errorText(err: unknown): string {
  if (isBridgeError(err)) return `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}

async function simulate(files: string[], options: SimulateOptions, io: CliIo): Promise<void> {
  const setup = await setupFor(options, io);
  printNote(io, options.json, { config: `${setup.source}` });
  const allowed = emitsAllowed(setup.definition);
  const map = setup.definition.map!.bind(setup.definition);
  let state: unknown;
  for (const file of files) {
    const name = file === '-' ? '(stdin)' : file;
    const payload = parsePayload(await readPayload(file, io), file === '-' ? '' : basename(file));
    if (!payload.ok) rejected(io, options.json, name, payload.reason);
    let result: MappingResult<unknown>;
    try {
      result = map(payload.record, setup.config, state);
    } catch (err) {
      if (!options.fixture) rejected(io, options.json, name, errorText(err));
      io.out(
        fixtureText(name, payload.record, { rejected: err instanceof Error ? err.message : String(err) }),
      );
      continue;
    }
    if (result.state !== undefined) state = result.state;
    if (options.fixture) {
      io.out(
        fixtureText(name, payload.record, fixtureExpectation(result, setup, allowed, name, io, options)),
      );
      continue;
    }
    if (result.ignored !== undefined) {
      printNote(io, options.json, { file: name, ignored: result.ignored });
      continue;
    }
    const now = new Date();
    const lines: string[] = [];
    for (const [index, draft] of result.events.entries()) {
      const checked = simulateEvent(draft, setup, allowed, now);
      if (!checked.ok)
        rejected(io, options.json, name, `event ${index} is invalid: ${checked.problems.join('; ')}`);
      lines.push(JSON.stringify(checked.event));
    }
    if (lines.length === 0)
      printNote(io, options.json, { file: name, ignored: 'the mapping returned no events' });
    for (const line of lines) io.out(line);
  }
}

/** `ssf-bridge simulate`: an inbound connector's mapping run on payload files, without a bridge. */
export function registerSimulate(program: Command, io: CliIo): void {
  program
    .command('simulate')
    .description(
      "Run an inbound connector's mapping on vendor payload files in order (state carried between them) and print each event it would emit as a JSON line",
    )
    .requiredOption('--connector <id>', 'inbound connector id (see: ssf-bridge connectors list)')
    .option('-c, --config <file>', 'use the settings of the instance of this config that uses the connector')
    .option('--instance <id>', 'with --config: the instance to use when several use the connector')
    .option('--json', 'write the notes on standard error as JSON lines too')
    .option(
      '--fixture',
      'print each payload as a conformance-kit fixture ({description, input, expect}) instead of the events',
    )
    .argument(
      '<payload-files...>',
      'vendor payloads in order: JSON, text (e.g. CSV), or - for standard input',
    )
    .action((files: string[], options: SimulateOptions) => simulate(files, options, io));
}
