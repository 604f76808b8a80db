import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capturingIo } from '../../../test/helpers/capture.ts';
import { defaultTxn } from '../../delivery/jti.ts';
import { main } from '../main.ts';
import { loadFixtures } from '../../plugin-api/testing/fixtures.ts';

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const COMPLIANCE = 'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change';
const EVENTS_API_FIXTURES = new URL('../../../connectors/events-api/fixtures/', import.meta.url);
const COMPLIANCE_PLUGIN = new URL('../../../test/fixtures/plugins/compliance-source.ts', import.meta.url);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-cli-simulate-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

async function run(args: string[], stdin = '') {
  const io = capturingIo(stdin);
  const code = await main(['node', 'ssf-bridge', 'simulate', ...args], io);
  return {
    code,
    lines: io.stdout.map((l) => JSON.parse(l) as Record<string, unknown>),
    stdout: io.stdout,
    err: io.stderr.join('\n'),
  };
}

/** A bridge config whose instance `devices` uses the stateful test connector. */
function complianceConfig(extra = ''): string {
  return file(
    'bridge.yaml',
    [
      `plugins: [${JSON.stringify(pathToFileURL(COMPLIANCE_PLUGIN.pathname).href)}]`,
      'inbound:',
      '  - id: devices',
      '    connector: test-compliance-source',
      '    config: {tenant: acme}',
      extra,
    ].join('\n'),
  );
}

const reading = (compliant: boolean, at: string, more: Record<string, unknown> = {}) => ({
  device: 'mac-042',
  user: 'dana.lee@example.com',
  compliant,
  at,
  ...more,
});

describe('ssf-bridge simulate (events-api, no config)', () => {
  it('prints one JSON line per event with the type URI, subject, claims and txn', async () => {
    const payload = file('one.json', {
      id: 'rec-1',
      type: 'caep.session-revoked',
      subject: { format: 'email', email: 'jane@example.com' },
      claims: { initiating_entity: 'admin' },
    });
    const result = await run(['--connector', 'events-api', payload]);
    expect(result.code).toBe(0);
    expect(result.lines).toEqual([
      {
        type: SESSION_REVOKED,
        subject: { format: 'email', email: 'jane@example.com' },
        claims: { initiating_entity: 'admin' },
        txn: defaultTxn('events-api', 'rec-1'),
        source_record_id: 'rec-1',
      },
    ]);
    expect(result.err).toBe('simulating with its example config "Token from the environment"');
  });

  it('reads a connector fixture file as its input, and standard input for -', async () => {
    const fixture = new URL('envelope-two-events.json', EVENTS_API_FIXTURES).pathname;
    const result = await run(['--connector', 'events-api', fixture]);
    expect(result.code).toBe(0);
    expect(result.lines).toHaveLength(2);
    const stdin = JSON.stringify({ type: 'caep.session-revoked', subject: { format: 'opaque', id: 'u1' } });
    const piped = await run(['--connector', 'events-api', '-'], stdin);
    expect(piped.lines).toMatchObject([{ type: SESSION_REVOKED, subject: { format: 'opaque', id: 'u1' } }]);
  });

  it('exits 2 with the reason at a rejected payload, after printing the events of earlier files', async () => {
    const good = file('good.json', { type: 'caep.session-revoked', subject: { format: 'opaque', id: 'u1' } });
    const malformed = new URL('malformed-missing-subject.json', EVENTS_API_FIXTURES).pathname;
    const result = await run(['--connector', 'events-api', good, malformed]);
    expect(result.code).toBe(2);
    expect(result.lines).toHaveLength(1);
    expect(result.err).toMatch(/malformed-missing-subject\.json: rejected: .*subject/);

    const broken = file('broken.json', '{"type": ');
    const json = await run(['--connector', 'events-api', broken]);
    expect(json.code).toBe(2);
    expect(json.err).toMatch(/broken\.json: rejected: not valid JSON/);
  });

  it('--fixture prints each payload as a fixture the conformance kit reads: events as mapped, or the rejection', async () => {
    const good = file('good.json', {
      id: 'rec-7',
      type: 'caep.session-revoked',
      subject: { format: 'email', email: 'jane@example.com' },
      occurred_at: '2026-11-29T10:00:00+01:00',
    });
    const malformed = new URL('malformed-missing-subject.json', EVENTS_API_FIXTURES).pathname;
    const result = await run(['--connector', 'events-api', '--fixture', good, malformed]);
    expect(result.code).toBe(0);
    expect(result.lines).toHaveLength(2);
    expect(result.lines[0]).toMatchObject({
      description: expect.stringMatching(/^Mapped from .*good\.json$/),
      input: { id: 'rec-7' },
      expect: {
        events: [
          {
            type: 'caep.session-revoked',
            subject: { format: 'email', email: 'jane@example.com' },
            sourceRecordId: 'rec-7',
          },
        ],
      },
    });
    expect((result.lines[1]?.['expect'] as { rejected: string }).rejected).toMatch(/subject/);
    const fixtures = join(dir, 'fixtures');
    mkdirSync(fixtures);
    result.stdout.forEach((text, i) => writeFileSync(join(fixtures, `case-${i}.json`), text));
    const loaded = loadFixtures(fixtures);
    expect(loaded.problems).toEqual([]);
    expect(loaded.fixtures).toHaveLength(2);
  });

  it('refuses an event the catalog does not know, naming the nearest type', async () => {
    const payload = file('typo.json', {
      type: 'caep.session-revokd',
      subject: { format: 'opaque', id: 'u1' },
    });
    const result = await run(['--connector', 'events-api', payload]);
    expect(result.code).toBe(2);
    expect(result.stdout).toEqual([]);
    expect(result.err).toMatch(/typo\.json: rejected: event 0 is invalid: type: .*caep\.session-revoked/);
  });

  it('explains an unknown connector, an outbound one, and an unreadable file (exit 2)', async () => {
    const unknown = await run(['--connector', 'event-api', file('x.json', {})]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown connector "event-api"; did you mean "events-api"?');
    // A connector package's id, simulated the way its README's id suggests, without a config.
    const pkg = await run(['--connector', 'acme-edr', file('z.json', {})]);
    expect(pkg.code).toBe(2);
    expect(pkg.err).toContain(
      'unknown connector "acme-edr"; a connector package is found through --config FILE naming it under plugins:',
    );
    const outbound = await run(['--connector', 'log', file('y.json', {})]);
    expect(outbound.code).toBe(2);
    expect(outbound.err).toContain('"log" is an outbound connector; simulate runs inbound mappings');
    const missing = await run(['--connector', 'events-api', join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/cannot read .*nope\.json \(ENOENT\)/);
  });
});

describe('ssf-bridge simulate --config (a stateful plugin connector)', () => {
  it('carries state from file to file: a baseline and an unchanged reading print nothing', async () => {
    const config = complianceConfig();
    const files = [
      file('01-baseline.json', reading(true, '2026-01-01T08:00:00Z')),
      file('02-failing.json', reading(false, '2026-01-01T09:00:00Z')),
      file('03-unchanged.json', reading(false, '2026-01-01T10:00:00Z')),
      file('04-fixed.json', reading(true, '2026-01-01T11:00:00Z')),
    ];
    const result = await run(['--connector', 'test-compliance-source', '--config', config, ...files]);
    expect(result.code).toBe(0);
    expect(result.lines).toEqual([
      {
        type: COMPLIANCE,
        subject: {
          format: 'complex',
          user: { format: 'email', email: 'dana.lee@example.com' },
          device: { format: 'opaque', id: 'mac-042' },
        },
        claims: { previous_status: 'compliant', current_status: 'not-compliant' },
        txn: defaultTxn('devices', 'acme:mac-042:2026-01-01T09:00:00Z'),
        source_record_id: 'acme:mac-042:2026-01-01T09:00:00Z',
        occurred_at: '2026-01-01T09:00:00.000Z',
      },
      expect.objectContaining({ claims: { previous_status: 'not-compliant', current_status: 'compliant' } }),
    ]);
    expect(result.err.split('\n')).toEqual([
      `simulating with the config of instance "devices" in ${config}`,
      `${files[0]}: ignored: first reading of mac-042 (baseline)`,
      `${files[2]}: ignored: mac-042 unchanged`,
    ]);
  });

  it('writes notes as JSON lines with --json', async () => {
    const config = complianceConfig();
    const baseline = file('a.json', reading(true, '2026-01-01T08:00:00Z'));
    const result = await run([
      '--connector',
      'test-compliance-source',
      '--config',
      config,
      '--json',
      baseline,
    ]);
    expect(result.code).toBe(0);
    expect(result.err.split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([
      { config: `the config of instance "devices" in ${config}` },
      { file: baseline, ignored: 'first reading of mac-042 (baseline)' },
    ]);
  });

  it('says which instance it used when several use the connector, as a JSON line with --json', async () => {
    const config = complianceConfig(
      ['  - id: devices-eu', '    connector: test-compliance-source', '    config: {tenant: acme-eu}'].join(
        '\n',
      ),
    );
    const baseline = file('a.json', reading(true, '2026-01-01T08:00:00Z'));
    const args = ['--connector', 'test-compliance-source', '--config', config, baseline];
    const text = await run(args);
    expect(text.code).toBe(0);
    expect(text.err.split('\n')[0]).toBe(
      '2 instances use test-compliance-source; using "devices" (choose with --instance)',
    );

    const json = await run([...args, '--json']);
    expect(json.code).toBe(0);
    expect(json.err.split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([
      { connector: 'test-compliance-source', instance: 'devices', instances: ['devices', 'devices-eu'] },
      { config: `the config of instance "devices" in ${config}` },
      { file: baseline, ignored: 'first reading of mac-042 (baseline)' },
    ]);
  });

  it('marks an event the pipeline would hold until its future time with scheduled_for', async () => {
    const config = complianceConfig();
    const later = new Date(Date.now() + 86_400_000).toISOString();
    const files = [
      file('1.json', reading(true, '2026-01-01T08:00:00Z')),
      file('2.json', reading(false, later)),
    ];
    const result = await run(['--connector', 'test-compliance-source', '--config', config, ...files]);
    expect(result.lines).toMatchObject([{ occurred_at: later, scheduled_for: later }]);
    const noHold = complianceConfig('delivery: {future_events: {hold: false}}');
    const immediate = await run(['--connector', 'test-compliance-source', '--config', noHold, ...files]);
    expect(immediate.lines[0]).not.toHaveProperty('scheduled_for');
  });

  it('exits 2 when the mapping refuses a payload or emits an event the catalog refuses', async () => {
    const config = complianceConfig();
    const baseline = file('1.json', reading(true, '2026-01-01T08:00:00Z'));
    const garbage = file('2.json', { device: 'mac-042' });
    const refused = await run([
      '--connector',
      'test-compliance-source',
      '--config',
      config,
      baseline,
      garbage,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/2\.json: rejected: not a compliance reading: user, compliant, at/);

    const bad = file('3.json', reading(false, '2026-01-01T09:00:00Z', { subject: 'broken' }));
    const invalid = await run(['--connector', 'test-compliance-source', '--config', config, baseline, bad]);
    expect(invalid.code).toBe(2);
    expect(invalid.stdout).toEqual([]);
    expect(invalid.err).toMatch(/3\.json: rejected: event 0 is invalid: subject/);
  });

  it('needs an instance of the connector in the config', async () => {
    const config = complianceConfig();
    const payload = file('p.json', {});
    const result = await run(['--connector', 'events-api', '--config', config, payload]);
    expect(result.code).toBe(2);
    expect(result.err).toContain(`no inbound instance in ${config} uses connector "events-api"`);
  });
});
