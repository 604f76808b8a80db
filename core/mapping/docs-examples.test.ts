import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { capturingIo } from '../../test/helpers/capture.ts';
import { main } from '../cli/main.ts';

/**
 * The example rule sets of docs/mapping.md, run as the page tells operators to: each config and
 * payload block is written to a file, `ssf-bridge simulate` maps the payload, and what it prints
 * must equal the page's output block.
 */
const PAGE = new URL('../../docs/mapping.md', import.meta.url);
const EXAMPLES = ['siem-alert', 'zscaler-nss-web', 'netskope-alert'];

function block(page: string, info: string): string {
  const start = page.indexOf(`\`\`\`${info}\n`);
  if (start < 0) throw new Error(`docs/mapping.md has no block ${info}`);
  const body = start + info.length + 4;
  return page.slice(body, page.indexOf('```', body));
}

/** One JSON value per line, or a single value spread over lines (as the formatter writes one). */
function jsonValues(text: string): unknown[] {
  try {
    return [JSON.parse(text) as unknown];
  } catch {
    return text
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as unknown);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ssf-mapping-docs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/mapping.md examples through ssf-bridge simulate', () => {
  const page = readFileSync(PAGE, 'utf8');
  for (const name of EXAMPLES) {
    it(name, async () => {
      const config = join(dir, `${name}.yaml`);
      const payload = join(dir, `${name}.json`);
      writeFileSync(config, block(page, `yaml file=${name}.yaml`));
      writeFileSync(payload, block(page, `json file=${name}.json`));
      const io = capturingIo();
      const code = await main(
        ['node', 'ssf-bridge', 'simulate', '--connector', 'generic-webhook', '--config', config, payload],
        io,
      );
      expect(io.stderr.join('\n')).not.toContain('rejected');
      expect(code).toBe(0);
      const printed = io.stdout.map((line) => JSON.parse(line) as unknown);
      const documented = jsonValues(block(page, `jsonl output=${name}`));
      expect(printed).toEqual(documented);
    });
  }
});
