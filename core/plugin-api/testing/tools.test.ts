import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { specimenWebhook } from '../../../test/conformance/specimens/specimen-webhook/index.ts';
import { runAuthoringTool } from './tools.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-tools-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const options = {
  connectorDir: new URL('../../../test/conformance/specimens/specimen-webhook/', import.meta.url),
  validConfig: { token: 'webhook-token-7a3f' },
};

async function simulate(file: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runAuthoringTool(specimenWebhook(), options, ['simulate', file], {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('a connector package’s npm run simulate', () => {
  it('prints the SET claims of a payload', async () => {
    const file = join(dir, 'alert.json');
    writeFileSync(
      file,
      JSON.stringify({
        id: 'a-9',
        kind: 'session_revoked',
        email: 'kim@example.com',
        at: '2026-03-01T10:00:00Z',
      }),
    );
    const result = await simulate(file);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.out)).toMatchObject([{ sub_id: { format: 'email', email: 'kim@example.com' } }]);
  });

  it('a missing file or one that is not JSON exits 2 with one line naming the file, not a stack trace', async () => {
    const missing = await simulate(join(dir, 'nope.json'));
    expect(missing).toEqual({ code: 2, out: '', err: `${join(dir, 'nope.json')}: no such file` });
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"id": ');
    const invalid = await simulate(broken);
    expect(invalid.code).toBe(2);
    expect(invalid.err).toMatch(/broken\.json: not valid JSON \(/);
  });
});
