/**
 * Authoring commands for a connector package (`npm run docs | simulate | dev` in the template):
 * regenerate the README reference, map one payload, or run the connector against a fake API.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { ConnectorDefinition, EventDraft, InboundDefinition } from '../types.ts';
import { redactHeaders } from '../../http/redact.ts';
import { SuiteContext } from './context.ts';
import { formatFor, renderReference, withGeneratedSection } from './docs.ts';
import { checkDraft } from './events.ts';
import { expectsRejected } from './fixtures.ts';
import type { ConformanceOptions } from './options.ts';

export interface ToolIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: ToolIo = {
  out: (text) => void process.stdout.write(`${text}\n`),
  err: (text) => void process.stderr.write(`${text}\n`),
};

const USAGE = [
  'usage: tools.ts <command>',
  '  docs              rewrite the generated reference section of README.md',
  '  simulate <file>   map one payload (a fixture file or a raw record) and show the SETs it becomes',
  '  dev               run the connector against a fake API and show what it produces or sends',
].join('\n');

/** Runs one authoring command; resolves to the process exit code. */
export async function runAuthoringTool(
  definition: ConnectorDefinition,
  options: ConformanceOptions,
  argv: readonly string[],
  io: ToolIo = processIo,
): Promise<number> {
  const ctx = new SuiteContext(definition, options);
  const [command, arg] = argv;
  switch (command) {
    case 'docs':
      return docs(ctx, io);
    case 'simulate':
      return simulate(ctx, arg, io);
    case 'dev':
      return dev(ctx, io);
    default:
      io.err(USAGE);
      return 2;
  }
}

async function docs(ctx: SuiteContext, io: ToolIo): Promise<number> {
  const file = join(ctx.connectorDir, 'README.md');
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  const reference = renderReference(ctx.definition, { fixtures: ctx.fixtures().fixtures });
  const next = await formatFor(file, withGeneratedSection(existing, reference, ctx.manifest.displayName));
  if (next === existing) {
    io.out('README.md is current');
    return 0;
  }
  writeFileSync(file, next);
  io.out('README.md: reference section rewritten');
  return 0;
}

/** What one event becomes: its SET claims for an example destination (unsigned). */
function setPreview(event: EventDraft, instanceId: string): unknown {
  const checked = checkDraft(event, instanceId);
  return checked.ok ? checked.built.claims : { invalid: checked.message, event };
}

async function simulate(ctx: SuiteContext, file: string | undefined, io: ToolIo): Promise<number> {
  const map = (ctx.definition as InboundDefinition).map;
  if (ctx.definition.kind !== 'inbound' || typeof map !== 'function') {
    io.err("simulate maps vendor payloads through an inbound connector's map(); for a destination use: dev");
    return 2;
  }
  if (!file) {
    io.err(USAGE);
    return 2;
  }
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    io.err(
      code === 'ENOENT'
        ? `${file}: no such file`
        : code
          ? `${file}: cannot be read (${code})`
          : `${file}: not valid JSON (${(err as Error).message})`,
    );
    return 2;
  }
  const record =
    data && typeof data === 'object' && 'input' in data && 'expect' in data
      ? (data as { input: unknown }).input
      : data;
  const config = ctx.definition.configSchema.parse(ctx.definition.examples?.[0]?.config ?? {});
  try {
    const result = map(record, config);
    if (result.ignored !== undefined) {
      io.out(`ignored: ${result.ignored}`);
      return 0;
    }
    const instanceId = `simulate-${ctx.manifest.id}`;
    io.out(
      JSON.stringify(
        result.events.map((e) => setPreview(e, instanceId)),
        null,
        2,
      ),
    );
    return 0;
  } catch (err) {
    io.err(`rejected: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
}

function definedHeaders(headers: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined));
}

/** Log lines at warn level or above (pino levels: warn is 40). */
function isWarning(line: string): boolean {
  try {
    const level = (JSON.parse(line) as { level?: unknown }).level;
    return typeof level === 'number' && level >= 40;
  } catch {
    return false;
  }
}

async function dev(ctx: SuiteContext, io: ToolIo): Promise<number> {
  await ctx.server.start();
  try {
    ctx.resetServer();
    const instance = ctx.instance();
    await instance.start();
    if (ctx.definition.kind === 'outbound') {
      const set = await ctx.set(instance, 'dev-record-1');
      const receipt = await instance.outbound.deliver(set, instance.abort.signal);
      const requests = ctx.server.requests.map((r) => ({
        request: `${r.method} ${r.path}`,
        headers: redactHeaders(definedHeaders(r.headers)),
        body: r.json ?? r.body,
      }));
      io.out(JSON.stringify({ delivered: set.claims, receipt, requests }, null, 2));
    } else {
      const records = ctx.fixtures().fixtures.filter((f) => !expectsRejected(f));
      if (ctx.manifest.capabilities.poll && ctx.options.poll) {
        ctx.options.poll.serve(
          ctx.server,
          records.map((f) => f.input),
        );
        await instance.runTask(30_000, ctx.options.poll.task);
      } else {
        for (const fixture of records) await ctx.webhook(instance, fixture.input);
      }
      const events = [...instance.sink.persisted.values()].map((e) => setPreview(e, instance.id));
      io.out(
        JSON.stringify(
          { requests: ctx.server.requests.map((r) => `${r.method} ${r.path}`), sets: events },
          null,
          2,
        ),
      );
    }
    await instance.stop(5_000);
    for (const line of ctx.capture.lines.filter(isWarning)) io.err(line);
    return 0;
  } catch (err) {
    io.err(
      err instanceof z.ZodError ? z.prettifyError(err) : err instanceof Error ? err.message : String(err),
    );
    return 1;
  } finally {
    await ctx.server.close();
  }
}
