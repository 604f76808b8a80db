import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capturingIo } from '../../../test/helpers/capture.ts';
import type { NewAuditEntry, Store } from '../../storage/index.ts';
import { sqliteMigrations } from '../../storage/sqlite/migrations.ts';
import { SqliteStore } from '../../storage/sqlite/store.ts';
import { newEvent } from '../../storage/testing/fixtures.ts';
import { main } from '../main.ts';
import { audited, parseTime, progressBar } from './dlq.ts';

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';

let dir: string;
let configFile: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-cli-dlq-'));
  configFile = join(dir, 'bridge.yaml');
  writeFileSync(configFile, `data_dir: ${JSON.stringify(join(dir, 'data'))}\n`);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function run(...args: string[]) {
  const io = capturingIo();
  const code = await main(['node', 'ssf-bridge', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n'), stderr: io.stderr };
}

function openStore(): SqliteStore {
  return SqliteStore.open({ path: join(dir, 'data', 'ssf-bridge.db') });
}

interface Seed {
  destination: string;
  type?: string;
  deadAt: string;
}

/** Accepts one event per seed and dead-letters its delivery at the given time, in order. */
async function seedDeadLetters(seeds: Seed[]): Promise<number[]> {
  const store = openStore();
  try {
    const ids: number[] = [];
    for (const seed of seeds) {
      const at = new Date(Date.parse(seed.deadAt) - 60_000);
      const item = newEvent({
        event: { acceptedAt: at, occurredAt: at, type: seed.type ?? SESSION_REVOKED },
        destinations: [seed.destination],
      });
      await store.accept({ now: at, events: [item], dedupeExpiresAt: at });
      const [leased] = await store.deliveries.lease({
        destinationId: seed.destination,
        owner: 'test',
        limit: 1,
        now: at,
        leaseMs: 60_000,
      });
      if (!leased) throw new Error('nothing leased');
      await store.deliveries.complete(
        [
          {
            kind: 'dead',
            id: leased.id,
            leaseToken: leased.leaseToken,
            error: {
              class: 'permanent',
              code: 'SSF_ERR_HTTP_REFUSED',
              message: 'receiver said no',
              status: 400,
            },
            setJwt: 'eyJhbGciOiJub25lIn0.eyJqdGkiOiJ4In0.',
          },
        ],
        new Date(seed.deadAt),
      );
      ids.push(leased.id);
    }
    return ids;
  } finally {
    await store.close();
  }
}

/** Many letters for one destination, written in three transactions (`reversed`: newest dies first). */
async function seedManyDeadLetters(count: number, reversed = false): Promise<void> {
  const store = openStore();
  try {
    const at = new Date('2026-01-01T00:00:00Z');
    const events = Array.from({ length: count }, () =>
      newEvent({ event: { acceptedAt: at, occurredAt: at }, destinations: ['okta'] }),
    );
    await store.accept({ now: at, events, dedupeExpiresAt: at });
    const leased = await store.deliveries.lease({
      destinationId: 'okta',
      owner: 'test',
      limit: count,
      now: at,
      leaseMs: 60_000,
    });
    const error = { class: 'retryable', code: 'SSF_ERR_HTTP_UNAVAILABLE', message: 'down', status: 503 };
    const outcomes = leased.map((l) => ({
      kind: 'dead' as const,
      id: l.id,
      leaseToken: l.leaseToken,
      error,
    }));
    await store.deliveries.complete(reversed ? outcomes.reverse() : outcomes, at);
  } finally {
    await store.close();
  }
}

async function states(ids: number[]) {
  const store = openStore();
  try {
    return await Promise.all(ids.map(async (id) => (await store.deliveries.get(id))?.state ?? 'gone'));
  } finally {
    await store.close();
  }
}

describe('ssf-bridge dlq list', () => {
  it('lists letters oldest first with destination, short event type, attempts and last error', async () => {
    await seedDeadLetters([
      { destination: 'okta', deadAt: '2026-01-01T10:00:00Z' },
      { destination: 'google', type: CREDENTIAL_CHANGE, deadAt: '2026-01-01T11:00:00Z' },
    ]);
    const result = await run('dlq', 'list', '--config', configFile);
    expect(result.code).toBe(0);
    const lines = result.out.split('\n');
    expect(lines[0]).toMatch(/^ID\s+DEAD AT\s+DESTINATION\s+EVENT TYPE\s+ATTEMPTS\s+LAST ERROR$/);
    expect(lines[1]).toMatch(
      /^1\s+2026-01-01T10:00:00.000Z\s+okta\s+caep.session-revoked\s+1\s+HTTP 400 SSF_ERR_HTTP_REFUSED: receiver said no$/,
    );
    expect(lines[2]).toMatch(/^2\s+.*google\s+caep.credential-change/);
  });

  it('filters by destination, event type (short name or URI) and time, and pages with a cursor', async () => {
    await seedDeadLetters([
      { destination: 'okta', deadAt: '2026-01-01T10:00:00Z' },
      { destination: 'okta', type: CREDENTIAL_CHANGE, deadAt: '2026-01-02T10:00:00Z' },
      { destination: 'google', deadAt: '2026-01-03T10:00:00Z' },
      { destination: 'okta', deadAt: '2026-01-04T10:00:00Z' },
    ]);
    const ids = async (...args: string[]) => {
      const result = await run('dlq', 'list', '--config', configFile, '--json', ...args);
      expect(result.code).toBe(0);
      const page = JSON.parse(result.out) as {
        dead_letters: Array<{ id: number }>;
        next_after: string | null;
      };
      return { ids: page.dead_letters.map((l) => l.id), next: page.next_after };
    };
    expect((await ids('--destination', 'okta')).ids).toEqual([1, 2, 4]);
    expect((await ids('--event-type', 'caep.credential-change')).ids).toEqual([2]);
    expect((await ids('--event-type', SESSION_REVOKED, '--destination', 'okta')).ids).toEqual([1, 4]);
    expect((await ids('--since', '2026-01-02T00:00:00Z', '--until', '2026-01-04T00:00:00Z')).ids).toEqual([
      2, 3,
    ]);
    const first = await ids('--limit', '2');
    expect(first).toEqual({ ids: [1, 2], next: expect.any(String) });
    expect(await ids('--limit', '2', '--after', first.next!)).toEqual({ ids: [3, 4], next: null });
    const narrowed = await ids('--destination', 'okta', '--limit', '1');
    expect(await ids('--destination', 'okta', '--limit', '5', '--after', narrowed.next!)).toEqual({
      ids: [2, 4],
      next: null,
    });

    const text = await run('dlq', 'list', '--config', configFile, '--limit', '3');
    const hint = /more letters follow: add --after (\S+) for the next page/.exec(text.err);
    expect(hint).not.toBeNull();
    expect((await ids('--after', hint![1]!)).ids).toEqual([4]);
  });

  it('rule: a letter of an older delivery that dies after a page was printed comes on a later page', async () => {
    const store = openStore();
    const at = new Date('2026-01-01T10:00:00Z');
    const items = [0, 1, 2].map(() => newEvent({ destinations: ['okta'] }));
    await store.accept({ now: at, events: items, dedupeExpiresAt: at });
    const leased = await store.deliveries.lease({
      destinationId: 'okta',
      owner: 'test',
      limit: 3,
      now: at,
      leaseMs: 3_600_000,
    });
    const die = (s: Store, i: number) =>
      s.deliveries.complete(
        [
          {
            kind: 'dead',
            id: leased[i]!.id,
            leaseToken: leased[i]!.leaseToken,
            error: { class: 'permanent', code: 'X', message: 'no' },
          },
        ],
        at,
      );
    await die(store, 1);
    await die(store, 2);
    await store.close();
    const page = async (...args: string[]) =>
      JSON.parse(
        (await run('dlq', 'list', '--config', configFile, '--json', '--limit', '1', ...args)).out,
      ) as {
        dead_letters: Array<{ id: number }>;
        next_after: string | null;
      };
    const first = await page();
    expect(first.dead_letters.map((l) => l.id)).toEqual([2]);
    // The oldest delivery, still retrying when the first page was printed, dies now.
    const again = openStore();
    await die(again, 0);
    await again.close();
    const second = await page('--after', first.next_after!);
    const third = await page('--after', second.next_after!);
    expect([...second.dead_letters, ...third.dead_letters].map((l) => l.id)).toEqual([3, 1]);
    expect(third.next_after).toBeNull();
  });

  it('refuses a letter id or text it did not print as --after (exit 2)', async () => {
    await seedDeadLetters([
      { destination: 'okta', deadAt: '2026-01-01T10:00:00Z' },
      { destination: 'okta', deadAt: '2026-01-01T11:00:00Z' },
    ]);
    for (const after of ['1', 'abc', Buffer.from('[1,"x"]').toString('base64url')]) {
      const result = await run('dlq', 'list', '--config', configFile, '--after', after);
      expect([after, result.code]).toEqual([after, 2]);
      expect(result.err).toContain(`--after "${after}" is not a cursor dlq list printed`);
    }
  });

  it('refuses an unknown event type with a hint, a bad time and a bad limit (exit 2)', async () => {
    await seedDeadLetters([{ destination: 'okta', deadAt: '2026-01-01T10:00:00Z' }]);
    const type = await run('dlq', 'list', '--config', configFile, '--event-type', 'caep.session-revokd');
    expect(type.code).toBe(2);
    expect(type.err).toMatch(/--event-type: .*caep.session-revokd.*caep.session-revoked/);
    const time = await run('dlq', 'list', '--config', configFile, '--since', 'yesterday');
    expect(time.code).toBe(2);
    expect(time.err).toContain('--since "yesterday" is neither an ISO 8601 time');
    expect((await run('dlq', 'list', '--config', configFile, '--limit', '0')).code).toBe(2);
  });

  it('rule: a one-shot command never migrates; a database older than this build is refused, untouched (exit 1)', async () => {
    const latest = sqliteMigrations.at(-1)!.version;
    const path = join(dir, 'data', 'ssf-bridge.db');
    mkdirSync(join(dir, 'data'));
    // The database as the previous release left it: every migration but the last.
    const db = new Database(path);
    db.exec(`CREATE TABLE schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
    for (const m of sqliteMigrations.slice(0, -1)) {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
    }
    db.close();
    const result = await run('dlq', 'list', '--config', configFile);
    expect(result.code).toBe(1);
    expect(result.err).toContain(
      `the database at ${path} is at schema version ${latest - 1}, older than this ssf-bridge's ${latest}: ` +
        'run `ssf-bridge run` of this release first to upgrade the database',
    );
    const after = new Database(path, { readonly: true });
    try {
      expect(after.prepare('SELECT MAX(version) AS v FROM schema_migrations').get()).toEqual({
        v: latest - 1,
      });
    } finally {
      after.close();
    }
  });

  it('rule: a database newer than this build is refused by one-shot commands (exit 1)', async () => {
    await seedDeadLetters([{ destination: 'okta', deadAt: '2026-01-01T10:00:00Z' }]);
    const latest = sqliteMigrations.at(-1)!.version;
    const db = new Database(join(dir, 'data', 'ssf-bridge.db'));
    db.prepare("INSERT INTO schema_migrations VALUES (?, 'from the future', 0)").run(latest + 1);
    db.close();
    const result = await run('dlq', 'list', '--config', configFile);
    expect(result.code).toBe(1);
    expect(result.err).toContain(
      `this ssf-bridge is older than the database at ${join(dir, 'data', 'ssf-bridge.db')} (schema version ${latest + 1}; this release knows up to ${latest})`,
    );
  });

  it('rule: an empty database is not given a schema by a one-shot command; there is nothing to show (exit 1)', async () => {
    const path = join(dir, 'data', 'ssf-bridge.db');
    mkdirSync(join(dir, 'data'));
    new Database(path).close();
    const result = await run('dlq', 'list', '--config', configFile);
    expect(result.code).toBe(1);
    expect(result.err).toContain(
      `the database at ${path} has no ssf-bridge schema yet, so there is nothing to show: has the bridge run with this config?`,
    );
    const after = new Database(path, { readonly: true });
    try {
      expect(after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([]);
    } finally {
      after.close();
    }
  });

  it('says so when the bridge has no database yet, without creating one (exit 1)', async () => {
    const result = await run('dlq', 'list', '--config', configFile);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/no database at .*ssf-bridge\.db: has the bridge run with this config\?/);
  });
});

describe('ssf-bridge dlq show', () => {
  it('shows the letter, its last error and its SET; an unknown id exits 1', async () => {
    await seedDeadLetters([{ destination: 'okta', deadAt: '2026-01-01T10:00:00Z' }]);
    const result = await run('dlq', 'show', '1', '--config', configFile);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^dead letter 1\n/);
    expect(result.out).toMatch(/last error\s+permanent HTTP 400 SSF_ERR_HTTP_REFUSED: receiver said no/);
    expect(result.out).toContain('"jti": "x"');
    const json = JSON.parse((await run('dlq', 'show', '1', '--config', configFile, '--json')).out) as Record<
      string,
      unknown
    >;
    expect(json).toMatchObject({
      id: 1,
      destination: 'okta',
      event_type: SESSION_REVOKED,
      set_claims: { jti: 'x' },
    });
    const missing = await run('dlq', 'show', '9', '--config', configFile);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no dead letter with id 9');
  });
});

describe('ssf-bridge dlq replay', () => {
  it('puts the selected letters back in the outbox with their jti and a fresh attempt budget', async () => {
    const ids = await seedDeadLetters([
      { destination: 'okta', deadAt: '2026-01-01T10:00:00Z' },
      { destination: 'google', deadAt: '2026-01-01T11:00:00Z' },
      { destination: 'okta', deadAt: '2026-01-01T12:00:00Z' },
    ]);
    const store = openStore();
    const jtiBefore = (await store.deliveries.get(ids[0]!))?.jti;
    await store.close();

    const result = await run('dlq', 'replay', '--config', configFile, '--destination', 'okta');
    expect(result.code).toBe(0);
    expect(result.out).toBe('replayed 2 dead letters: back in the outbox with their original jti');
    expect(await states(ids)).toEqual(['pending', 'dead', 'pending']);

    const after = openStore();
    const replayed = await after.deliveries.get(ids[0]!);
    await after.close();
    expect(replayed).toMatchObject({ jti: jtiBefore, attempts: 0, state: 'pending' });
    expect(replayed!.enqueuedAt.getTime()).toBeGreaterThan(Date.parse('2026-01-02T00:00:00Z'));
  });

  it('replays named ids, refuses to act without a selection, and refuses --all with a filter', async () => {
    const ids = await seedDeadLetters([
      { destination: 'okta', deadAt: '2026-01-01T10:00:00Z' },
      { destination: 'okta', deadAt: '2026-01-01T11:00:00Z' },
    ]);
    const none = await run('dlq', 'replay', '--config', configFile);
    expect(none.code).toBe(2);
    expect(none.err).toContain('say which dead letters to replay');
    expect((await run('dlq', 'replay', '--config', configFile, '--all', '--destination', 'okta')).code).toBe(
      2,
    );
    expect((await run('dlq', 'replay', '--config', configFile, 'abc')).code).toBe(2);

    expect((await run('dlq', 'replay', '--config', configFile, String(ids[1]))).out).toContain('replayed 1 ');
    expect(await states(ids)).toEqual(['dead', 'pending']);
    expect((await run('dlq', 'replay', '--config', configFile, '--all')).out).toContain('replayed 1 ');
    expect((await run('dlq', 'replay', '--config', configFile, '--all')).out).toBe('no dead letters match');
  });

  it('draws a progress bar on standard error with --progress, one step per batch', async () => {
    await seedManyDeadLetters(1100);
    const result = await run('dlq', 'replay', '--config', configFile, '--all', '--progress');
    expect(result.code).toBe(0);
    expect(result.out).toBe('replayed 1100 dead letters: back in the outbox with their original jti');
    expect(result.stderr).toEqual([
      expect.stringMatching(/^replaying \[#+-+\] 500\/1100 \(45%\)$/),
      expect.stringMatching(/^replaying \[#+-+\] 1000\/1100 \(90%\)$/),
      expect.stringMatching(/^replaying \[#+\] 1100\/1100 \(100%\)$/),
    ]);
    const quiet = await seedDeadLetters([{ destination: 'okta', deadAt: '2026-01-05T00:00:00Z' }]);
    const small = await run('dlq', 'replay', '--config', configFile, String(quiet[0]));
    expect(small.stderr).toEqual([]);
  });
});

describe('ssf-bridge dlq replay, batches', () => {
  it('walks the letters in the order they died, batch after batch, replaying each once', async () => {
    await seedManyDeadLetters(1100, true);
    const result = await run('dlq', 'replay', '--config', configFile, '--all');
    expect(result.out).toBe('replayed 1100 dead letters: back in the outbox with their original jti');
    const store = openStore();
    try {
      expect(await store.deadLetters.count()).toBe(0);
      expect((await store.stats()).backlog).toEqual({ okta: 1100 });
    } finally {
      await store.close();
    }
  });
});

describe('ssf-bridge dlq purge', () => {
  it('deletes the selected letters only with --yes', async () => {
    const ids = await seedDeadLetters([
      { destination: 'okta', deadAt: '2026-01-01T10:00:00Z' },
      { destination: 'google', deadAt: '2026-01-01T11:00:00Z' },
    ]);
    const unconfirmed = await run('dlq', 'purge', '--config', configFile, '--destination', 'google');
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.err).toContain(
      '1 dead letter match; purging deletes them for good: add --yes to confirm',
    );
    expect(await states(ids)).toEqual(['dead', 'dead']);

    const purged = await run('dlq', 'purge', '--config', configFile, '--destination', 'google', '--yes');
    expect(purged.code).toBe(0);
    expect(purged.out).toBe('purged 1 dead letter');
    expect(await states(ids)).toEqual(['dead', 'gone']);
  });

  it('rule: a day the calendar does not have is refused (exit 2), not moved to the days after it', async () => {
    // Read as Date reads it, --until 2026-02-30 would be March 2: these letters would go too.
    const ids = await seedDeadLetters([
      { destination: 'okta', deadAt: '2026-02-27T10:00:00Z' },
      { destination: 'okta', deadAt: '2026-03-01T10:00:00Z' },
    ]);
    for (const until of ['2026-02-30', '2026-02-30T00:00:00Z', '2026-02-29 12:00']) {
      const purged = await run('dlq', 'purge', '--config', configFile, '--until', until, '--yes');
      expect(purged.code).toBe(2);
      expect(purged.err).toContain(`--until "${until}" names a day the calendar does not have`);
    }
    expect(await states(ids)).toEqual(['dead', 'dead']);
    const listed = await run('dlq', 'list', '--config', configFile, '--since', '2026-13-01');
    expect(listed.code).toBe(2);
    expect(listed.err).toContain('--since "2026-13-01" names a day the calendar does not have');
  });
});

describe('ssf-bridge dlq audit', () => {
  async function auditLog() {
    const store = openStore();
    try {
      return (await store.operator.listAudit({ limit: 10 })).reverse();
    } finally {
      await store.close();
    }
  }

  it('records replays and purges as the admin API does, with actor cli, the filter and the count', async () => {
    const ids = await seedDeadLetters([
      { destination: 'okta', deadAt: '2026-01-01T10:00:00Z' },
      { destination: 'google', deadAt: '2026-01-01T11:00:00Z' },
      { destination: 'okta', deadAt: '2026-01-01T12:00:00Z' },
    ]);
    const since = '2026-01-01T09:00:00Z';
    expect(
      (await run('dlq', 'replay', '--config', configFile, '--destination', 'okta', '--since', since)).code,
    ).toBe(0);
    expect((await run('dlq', 'purge', '--config', configFile, String(ids[1]))).code).toBe(2);
    expect((await run('dlq', 'purge', '--config', configFile, String(ids[1]), '--yes')).code).toBe(0);
    expect((await run('dlq', 'replay', '--config', configFile, '--all')).out).toBe('no dead letters match');

    // The unconfirmed purge never ran, so it is not recorded.
    expect(await auditLog()).toMatchObject([
      {
        actor: 'cli',
        role: 'write',
        action: 'dead_letters.replay',
        target: 'okta',
        detail: {
          filter: { destinationId: 'okta', since: new Date(since).toISOString() },
          outcome: 'ok',
          result: 2,
        },
      },
      {
        actor: 'cli',
        action: 'dead_letters.purge',
        target: `ids ${ids[1]}`,
        detail: { filter: { ids: [ids[1]] }, outcome: 'ok', result: 1 },
      },
      {
        actor: 'cli',
        action: 'dead_letters.replay',
        target: 'all destinations',
        detail: { filter: {}, outcome: 'ok', result: 0 },
      },
    ]);
  });

  it('records a replay that failed midway with the letters already replayed, and rethrows', async () => {
    const recorded: NewAuditEntry[] = [];
    const store = {
      operator: { recordAudit: async (entry: NewAuditEntry) => void recorded.push(entry) },
    } as unknown as Store;
    const io = capturingIo();
    const failing = audited(store, io, 'replay', { destinationId: 'okta' }, async (done) => {
      done.count = 500;
      throw new Error('database is locked');
    });
    await expect(failing).rejects.toThrow('database is locked');
    expect(recorded).toMatchObject([
      {
        actor: 'cli',
        action: 'dead_letters.replay',
        target: 'okta',
        detail: {
          filter: { destinationId: 'okta' },
          outcome: 'failed',
          error: 'database is locked',
          result: 500,
        },
      },
    ]);
  });
});

describe('dlq audit entries that cannot be written', () => {
  it('a replay that was done still succeeds with its count when its audit entry cannot be written, and says so', async () => {
    const store = {
      operator: {
        recordAudit: async () => {
          throw new Error('database is locked');
        },
      },
    } as unknown as Store;
    const io = capturingIo();
    const count = await audited(store, io, 'replay', { destinationId: 'okta' }, async (done) => {
      done.count = 3;
    });
    expect(count).toBe(3);
    expect(io.stderr.join('\n')).toContain(
      'could not record the replay in the audit log: database is locked',
    );
  });
});

describe('dlq helpers', () => {
  it('reads times as ISO 8601 or as a duration ago', () => {
    const now = new Date('2026-01-10T00:00:00Z');
    expect(parseTime('2026-01-01T10:00:00Z', now)?.toISOString()).toBe('2026-01-01T10:00:00.000Z');
    expect(parseTime('2026-01-01', now)?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    // Without a zone, UTC, whatever zone the shell runs in.
    const zone = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(parseTime('2026-01-01T10:00:00', now)?.toISOString()).toBe('2026-01-01T10:00:00.000Z');
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
    expect(parseTime('24h', now)?.toISOString()).toBe('2026-01-09T00:00:00.000Z');
    expect(parseTime('1d12h', now)?.toISOString()).toBe('2026-01-08T12:00:00.000Z');
    expect(parseTime('12', now)).toBeUndefined();
    expect(parseTime('last week', now)).toBeUndefined();
  });

  it('reads a time of day without a zone as UTC whether T or a space separates it, in any zone', async () => {
    const now = new Date('2026-03-10T00:00:00Z');
    const zone = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      for (const text of [
        '2026-01-31T09:00:00',
        '2026-01-31 09:00:00',
        '2026-01-31 09:00',
        ' 2026-01-31 09:00:00 ',
      ])
        expect(parseTime(text, now)?.toISOString(), text).toBe('2026-01-31T09:00:00.000Z');
      expect(parseTime('2026-01-31 09:00:00+02:00', now)?.toISOString()).toBe('2026-01-31T07:00:00.000Z');
      expect(parseTime('2026-02-30', now)).toBeUndefined();
      // And so the command filters: only the letter dead at or after 09:00 UTC.
      await seedDeadLetters([
        { destination: 'okta', deadAt: '2026-01-31T08:00:00Z' },
        { destination: 'okta', deadAt: '2026-01-31T10:00:00Z' },
      ]);
      const result = await run(
        'dlq',
        'list',
        '--config',
        configFile,
        '--json',
        '--since',
        '2026-01-31 09:00:00',
      );
      expect(result.code).toBe(0);
      const page = JSON.parse(result.out) as { dead_letters: Array<{ id: number }> };
      expect(page.dead_letters.map((l) => l.id)).toEqual([2]);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('draws a bar proportional to the work done', () => {
    expect(progressBar(0, 10, 10)).toBe('[----------] 0/10 (0%)');
    expect(progressBar(5, 10, 10)).toBe('[#####-----] 5/10 (50%)');
    expect(progressBar(10, 10, 10)).toBe('[##########] 10/10 (100%)');
  });
});
