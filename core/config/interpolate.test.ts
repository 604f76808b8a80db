import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configCrossChecks, defaultRegistry } from '../runtime/defaults.ts';
import { loadConfigText } from './index.ts';
import { interpolateString, interpolateTree, type InterpolationProblem } from './interpolate.ts';

const dir = mkdtempSync(join(tmpdir(), 'ssf-interpolate-'));

function expand(text: string, env: Record<string, string> = {}) {
  const problems: InterpolationProblem[] = [];
  const value = interpolateString(text, 'inbound[0].config.token', { env, baseDir: dir }, problems);
  return { value, problems };
}

describe('escapes: only "$" runs right before "{" are special', () => {
  it('keeps JSONata `$$` (the root) and `$` (the context) as written', () => {
    const rule = '$count(users[role = $$.target_role]) > 0 and $$.a = $.a and $string($$$) = "$$"';
    expect(expand(rule)).toEqual({ value: rule, problems: [] });
  });

  it('still reads `$${` as a literal `${`, and `$$${…}` as a `$` before the reference', () => {
    expect(expand('$${env:X}', { X: 'v' })).toEqual({ value: '${env:X}', problems: [] });
    expect(expand('a$$${env:X}b', { X: 'v' })).toEqual({ value: 'a$vb', problems: [] });
    expect(expand('$$$${env:X}', { X: 'v' })).toEqual({ value: '$${env:X}', problems: [] });
  });

  it('reads a long run of `$` once: 200,000 of them before a reference expand at once, as written', () => {
    // Scanned again from every `$` of the run (quadratic), this took 40 s on a 2-core machine;
    // once, it takes milliseconds. The bound only tells the two apart.
    const run = '$'.repeat(200_000);
    const started = performance.now();
    expect(expand(`${run}x\${env:X}`, { X: 'v' })).toEqual({ value: `${run}xv`, problems: [] });
    expect(performance.now() - started).toBeLessThan(2_000);
    // 200,001 `$` before `{`: 100,000 literal `$`, then the reference.
    expect(expand(`${run}\${env:X}`, { X: 'v' }).value).toBe(`${'$'.repeat(100_000)}v`);
  });

  it('maps a generic-webhook rule that compares with the root ($$) as written', async () => {
    const result = await loadConfigText(
      `
inbound:
  - id: hook
    connector: generic-webhook
    config:
      auth: { type: bearer, token: hook-token-0123456789abcdef }
      rules:
        - name: admin-role
          match: $count(users[role = $$.target_role]) > 0
          event_type: caep.session-revoked
          subject: '{"format": "email", "email": users[0].email}'
          examples:
            - record: { target_role: admin, users: [{ role: admin, email: a@example.com }] }
            - record: { target_role: admin, users: [{ role: user, email: a@example.com }] }
              matches: false
`,
      { registry: defaultRegistry(), crossChecks: configCrossChecks(), env: {} },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const config = result.config.instances[0]?.config as { rules: Array<{ match: string }> };
    expect(config.rules[0]?.match).toBe('$count(users[role = $$.target_role]) > 0');
  });
});

describe('references inside a reference', () => {
  it('refuses a default holding another reference, with A unset or set, naming the path', () => {
    for (const env of [{}, { A: 'set' }] as Array<Record<string, string>>) {
      const { problems } = expand('${env:A:-${file:/run/secrets/t}}', env);
      expect(problems, JSON.stringify(env)).toEqual([
        { path: 'inbound[0].config.token', message: expect.stringMatching(/nested references are not/) },
      ]);
    }
  });

  it('refuses a "{" in a reference, whose "}" would end it early and leave a stray "}"', () => {
    expect(expand('${env:A:-{"k": 1}}', { A: 'set' }).problems).toEqual([
      expect.objectContaining({ message: expect.stringMatching(/cannot contain "\{"/) }),
    ]);
  });

  it('keeps a "}" written after a complete reference', () => {
    expect(expand('{"a": "${env:A}"}', { A: 'v' })).toEqual({ value: '{"a": "v"}', problems: [] });
  });

  it('reports the config path of a nested reference when loading a file', async () => {
    writeFileSync(join(dir, 't'), 'file-secret\n');
    const result = await loadConfigText('issuer: "${env:ISS:-${file:t}}"\n', {
      registry: defaultRegistry(),
      env: {},
      file: join(dir, 'bridge.yaml'),
    });
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.problems).toEqual([
        { path: 'issuer', message: expect.stringMatching(/nested references are not supported/) },
      ]);
  });
});

describe('the size of the expanded tree', () => {
  it('stops copying a tree that aliases make larger than the node budget', () => {
    // What toJS makes of an anchor used many times: one object, shared.
    const shared = Array.from({ length: 1_000 }, (_, i) => `v${i}`);
    const tree = { a: Array.from({ length: 2_000 }, () => shared) };
    const started = Date.now();
    expect(() => interpolateTree(tree, { env: {}, baseDir: dir }, [], { maxNodes: 100_000 })).toThrow(
      /more than 100,000 values/,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
