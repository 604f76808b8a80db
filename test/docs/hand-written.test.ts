/**
 * Checks the hand-written pages (README.md, docs/*.md) against the code they describe: links and
 * anchors between pages, the metric names they quote, the commands and flags they show, the
 * delivery defaults and the connectors they list.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import client from 'prom-client';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { firstPartyConnectors } from '../../connectors/index.ts';
import { buildProgram } from '../../core/cli/main.ts';
import { deliveryConfigSchema } from '../../core/delivery/config.ts';
import { repoRoot } from './generate.ts';

const pages = [
  join(repoRoot, 'README.md'),
  ...readdirSync(join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(repoRoot, 'docs', f)),
];
const read = (file: string) => readFileSync(file, 'utf8');
const withoutCodeBlocks = (text: string) => text.replace(/^```[\s\S]*?^```/gm, '');
const name = (file: string) => relative(repoRoot, file);

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Every anchor a page offers: its headings (repeats numbered as GitHub does) and `<a id>`s. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const prose = withoutCodeBlocks(text);
  for (const [, heading] of prose.matchAll(/^#{1,6}\s+(.*)$/gm)) {
    const base = slug(heading!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const [, id] of prose.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(id!);
  return anchors;
}

/** Relative links of a page that lead nowhere: a missing file, or a missing anchor in a page. */
function brokenLinks(file: string, text: string, readPage: (file: string) => string = read): string[] {
  const broken: string[] = [];
  for (const [, link] of withoutCodeBlocks(text).matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link!)) continue; // https:, mailto:
    const [path = '', anchor] = link!.split('#');
    const target = path === '' ? file : resolve(dirname(file), path);
    if (!existsSync(target)) broken.push(`${link}: no such file`);
    else if (anchor !== undefined && target.endsWith('.md') && !anchorsOf(readPage(target)).has(anchor)) {
      broken.push(`${link}: no heading or anchor "${anchor}" in ${name(target)}`);
    }
  }
  return broken;
}

/** Every `ssf_bridge_*` name the code registers, as string literals in core/ and connectors/. */
function registeredMetricNames(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'dist') walk(path);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
        for (const [, metric] of read(path).matchAll(/['"`](ssf_bridge_[a-z0-9_]+)['"`]/g))
          names.add(metric!);
      }
    }
  };
  walk(join(repoRoot, 'core'));
  walk(join(repoRoot, 'connectors'));
  // Node.js process metrics, registered by prom-client with the bridge's prefix.
  const defaults = new client.Registry();
  client.collectDefaultMetrics({ register: defaults, prefix: 'ssf_bridge_' });
  for (const metric of defaults.getMetricsAsArray()) names.add(metric.name);
  return names;
}

/**
 * Metric names quoted in a page that nothing registers. A name ending in `_` or `*` is a prefix
 * (`ssf_bridge_connector_*`) and must start at least one registered name; a histogram's series
 * (`_bucket`, `_sum`, `_count`) count as its own name.
 */
function unknownMetrics(text: string, registered: Set<string>): string[] {
  const unknown = new Set<string>();
  for (const [quoted] of text.matchAll(/ssf_bridge_[a-z0-9_]*\*?/g)) {
    const prefix = quoted.replace(/\*$/, '');
    if (quoted.endsWith('*') || prefix.endsWith('_')) {
      if (![...registered].some((n) => n.startsWith(prefix))) unknown.add(quoted);
      continue;
    }
    const base = prefix.replace(/_(bucket|sum|count)$/, '');
    if (!registered.has(prefix) && !registered.has(base)) unknown.add(quoted);
  }
  return [...unknown];
}

/** Every code span and code block line that runs `ssf-bridge <command>` (after `$`, `npx` or `&&`). */
function commandLines(text: string): string[] {
  const lines: string[] = [];
  for (const [, block] of text.matchAll(/^```[a-z]*\n([\s\S]*?)^```/gm)) {
    for (const line of block!.split('\n')) lines.push(line.replace(/^\$\s*/, ''));
  }
  for (const [, span] of withoutCodeBlocks(text).matchAll(/`([^`\n]+)`/g)) lines.push(span!);
  return lines
    .map((line) => /^(?:.*&&\s*)?(?:npx\s+)?(ssf-bridge\s+[a-z].*)$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined);
}

/**
 * What a shown command line names that the program does not have: a command or subcommand
 * (`a|b` alternatives each checked), or a `--flag` of the command it runs.
 */
function unknownCommandParts(line: string, program: Command): string[] {
  const words = line.split(/\s+/).slice(1);
  const problems: string[] = [];
  let commands = [program];
  let i = 0;
  for (; i < words.length; i += 1) {
    const word = words[i]!.replace(/[[\]]/g, '');
    if (!/^[a-z][a-z-]*(\|[a-z][a-z-]*)*$/.test(word)) break;
    const parent = commands[0]!;
    if (parent.commands.length === 0) break;
    const found = word.split('|').map((w) => parent.commands.find((c) => c.name() === w));
    if (found.some((c) => c === undefined)) {
      // After a command with subcommands a word must be one of them, unless the command takes it
      // as an argument of its own.
      if (parent === program) problems.push(`no command "${word}"`);
      else if (parent.registeredArguments.length === 0)
        problems.push(`no subcommand "${parent.name()} ${word}"`);
      break;
    }
    commands = found as Command[];
  }
  const flags = words
    .slice(i)
    .flatMap((w) => [...w.matchAll(/(?:^|[[(|])(--[a-z][a-z-]*)/g)].map((m) => m[1]!));
  for (const flag of flags) {
    if (flag === '--help' || flag === '--version') continue;
    for (const command of commands) {
      if (command === program) continue;
      if (!command.options.some((o) => o.long === flag)) {
        const path =
          command.parent === program ? command.name() : `${command.parent!.name()} ${command.name()}`;
        problems.push(`"${path}" has no option ${flag}`);
      }
    }
  }
  return problems;
}

/**
 * The labels of every metric the code declares with a literal name: the third argument of
 * `metrics.counter|gauge|histogram(name, help, [labels])`, or `labelNames` beside `name:` in a
 * prom-client constructor. Connector metrics (`ssf_bridge_connector_*`) are named at run time.
 */
function declaredMetricLabels(): Map<string, string[]> {
  const declared = new Map<string, string[]>();
  const sources: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) sources.push(read(path));
    }
  };
  walk(join(repoRoot, 'core'));
  for (const source of sources) {
    for (const m of source.matchAll(
      /(\.(?:counter|gauge|histogram)\(\s*|name:\s*)'(ssf_bridge_[a-z0-9_]+)'/g,
    )) {
      const rest = source.slice(m.index + m[0].length);
      // The rest of the call or object literal: up to the bracket that closes it.
      let depth = 0;
      let quote: string | undefined;
      let end = 0;
      const commas: number[] = [];
      for (; end < rest.length; end += 1) {
        const c = rest[end]!;
        if (quote) {
          if (c === '\\') end += 1;
          else if (c === quote) quote = undefined;
        } else if (c === "'" || c === '"' || c === '`') quote = c;
        else if ('([{'.includes(c)) depth += 1;
        else if (')]}'.includes(c)) {
          if (depth === 0) break;
          depth -= 1;
        } else if (c === ',' && depth === 0) commas.push(end);
      }
      const body = rest.slice(0, end);
      const list = m[1]!.startsWith('name')
        ? /labelNames:\s*\[([^\]]*)\]/.exec(body)?.[1]
        : commas.length >= 2
          ? /^\s*\[([^\]]*)\]/.exec(body.slice(commas[1]! + 1))?.[1]
          : undefined;
      declared.set(
        m[2]!,
        [...(list ?? '').matchAll(/'([a-z_]+)'/g)].map((l) => l[1]!),
      );
    }
  }
  return declared;
}

/** The rows of the metrics table of docs/operations.md: the metrics each names, and its labels. */
function documentedMetricLabels(): Array<{ metrics: string[]; labels: string[] }> {
  const text = read(join(repoRoot, 'docs', 'operations.md'));
  const table = /^## Metrics\n[\s\S]*?(^\|[\s\S]*?)\n\n/m.exec(text)?.[1];
  if (!table) throw new Error('no table under "## Metrics" in docs/operations.md');
  return table
    .split('\n')
    .slice(2)
    .map((row) => row.split('|').map((cell) => cell.trim()))
    .filter((cells) => !cells[3]!.includes('…'))
    .map((cells) => ({
      metrics: [...cells[1]!.matchAll(/`(ssf_bridge_[a-z0-9_]+\*?)`/g)].map((c) => c[1]!),
      labels: [...cells[3]!.matchAll(/`([a-z_]+)`/g)].map((c) => c[1]!).sort(),
    }));
}

describe('hand-written docs', () => {
  it('link only to pages and anchors that exist', () => {
    const broken = pages.flatMap((file) => brokenLinks(file, read(file)).map((b) => `${name(file)}: ${b}`));
    expect(broken).toEqual([]);
  });

  it('name only metrics the bridge registers, the Grafana dashboard included', () => {
    const registered = registeredMetricNames();
    expect(registered.has('ssf_bridge_deliveries_total')).toBe(true);
    const dashboard = join(repoRoot, 'docs', 'operations', 'grafana-dashboard.json');
    const unknown = [...pages, dashboard].flatMap((file) =>
      unknownMetrics(read(file), registered).map((m) => `${name(file)}: ${m}`),
    );
    expect(unknown).toEqual([]);
  });

  it('give each metric in the operations table the labels the code gives it', () => {
    const declared = declaredMetricLabels();
    expect(declared.get('ssf_bridge_deliveries_total')).toEqual(['destination', 'outcome']);
    const rows = documentedMetricLabels();
    expect(rows.length).toBeGreaterThan(10);
    const mismatches = rows.flatMap(({ metrics, labels }) => {
      const names = metrics.flatMap((metric) =>
        metric.endsWith('*')
          ? [...declared.keys()].filter((n) => n.startsWith(metric.slice(0, -1)))
          : [metric],
      );
      const missing = names.filter((n) => !declared.has(n));
      if (missing.length > 0) return [`${missing.join(', ')}: not declared with a literal name`];
      const inCode = [...new Set(names.flatMap((n) => declared.get(n)!))].sort();
      return inCode.join(',') === labels.join(',')
        ? []
        : [`${metrics.join(', ')}: documented {${labels.join(', ')}}, declared {${inCode.join(', ')}}`];
    });
    expect(mismatches).toEqual([]);
  });

  it('list every command of the command line in the table of docs/cli.md, and no other', () => {
    const program = buildProgram({ out: () => undefined, err: () => undefined } as never);
    const table = /^\| command[\s\S]*?\n\n/m.exec(read(join(repoRoot, 'docs', 'cli.md')))?.[0] ?? '';
    const listed = [...table.matchAll(/^\| `([a-z-]+)`/gm)].map((m) => m[1]).sort();
    expect(listed).toEqual(program.commands.map((c) => c.name()).sort());
  });

  it('show only commands and flags the command line has', () => {
    const program = buildProgram({ out: () => undefined, err: () => undefined } as never);
    const problems = pages.flatMap((file) =>
      commandLines(read(file)).flatMap((line) =>
        unknownCommandParts(line, program).map((p) => `${name(file)}: \`${line}\`: ${p}`),
      ),
    );
    expect(problems).toEqual([]);
  });
});

describe('the checks themselves', () => {
  const page = join(repoRoot, 'docs', 'cli.md');
  const pagesText: Record<string, string> = {
    [page]: '# Command line\n\n## `ssf-bridge simulate`\n\n<a id="old-name"></a>\n\n## Exit codes\n',
  };
  const readFake = (file: string) => pagesText[file] ?? read(file);

  it('find a missing anchor, and take headings, repeats and <a id> anchors', () => {
    expect(brokenLinks(page, '[x](#simulate)', readFake)).toHaveLength(1);
    expect(brokenLinks(page, '[x](#ssf-bridge-simulate) [y](#old-name) [z](#exit-codes)', readFake)).toEqual(
      [],
    );
    expect(brokenLinks(page, '[x](nowhere.md)', readFake)).toHaveLength(1);
    expect(brokenLinks(page, '[x](https://example.com/#a)', readFake)).toEqual([]);
    expect(anchorsOf('## A\n\n## A\n')).toEqual(new Set(['a', 'a-1']));
  });

  it('find a metric name nothing registers, and accept prefixes and histogram series', () => {
    const registered = new Set(['ssf_bridge_queue_depth', 'ssf_bridge_delivery_latency_seconds']);
    expect(unknownMetrics('`ssf_bridge_queue_size`', registered)).toEqual(['ssf_bridge_queue_size']);
    expect(
      unknownMetrics('ssf_bridge_delivery_latency_seconds_bucket, `ssf_bridge_queue_*`', registered),
    ).toEqual([]);
    expect(unknownMetrics('`ssf_bridge_nothing_*`', registered)).toEqual(['ssf_bridge_nothing_*']);
  });

  it('find an unknown command, subcommand or flag', () => {
    const program = buildProgram({ out: () => undefined, err: () => undefined } as never);
    expect(unknownCommandParts('ssf-bridge dlq list --destination X --limit 5', program)).toEqual([]);
    expect(unknownCommandParts('ssf-bridge dlq list|show|replay|purge', program)).toEqual([]);
    expect(unknownCommandParts('ssf-bridge dlq show 412 --json', program)).toEqual([]);
    expect(unknownCommandParts('ssf-bridge deadletters list', program)).toHaveLength(1);
    expect(unknownCommandParts('ssf-bridge dlq retry 4', program)).toHaveLength(1);
    expect(unknownCommandParts('ssf-bridge dlq list --page 2', program)).toHaveLength(1);
  });
});

describe('the delivery settings shown in docs/delivery.md', () => {
  it('are the defaults, apart from the per-destination example', () => {
    const text = read(join(repoRoot, 'docs', 'delivery.md'));
    const block = /^## Settings\n[\s\S]*?^```yaml\n([\s\S]*?)^```/m.exec(text)?.[1];
    if (!block) throw new Error('no yaml block under "## Settings" in docs/delivery.md');
    const shown = (parse(block) as { delivery: Record<string, unknown> }).delivery;
    const { destinations, ...settings } = deliveryConfigSchema.parse(shown);
    const { destinations: _none, ...defaults } = deliveryConfigSchema.parse({});
    expect(settings).toEqual(defaults);
    expect(Object.keys(destinations).length).toBeGreaterThan(0);
  });
});

describe("README's connector list", () => {
  it('names every registered connector, inbound and outbound, and no other', () => {
    const section = /^## Connectors\n([\s\S]*?)^## /m.exec(read(join(repoRoot, 'README.md')))?.[1];
    if (!section) throw new Error('no "## Connectors" section in README.md');
    const listed = (kind: string) =>
      [...(new RegExp(`${kind}:([^.]*)\\.`).exec(section)?.[1] ?? '').matchAll(/`([a-z0-9-]+)`/g)]
        .map((m) => m[1])
        .sort();
    const registered = (kind: string) =>
      firstPartyConnectors
        .map((d) => d.manifest)
        .filter((m) => m.kind === kind)
        .map((m) => m.id)
        .sort();
    expect(listed('Inbound')).toEqual(registered('inbound'));
    expect(listed('Outbound')).toEqual(registered('outbound'));
  });
});
