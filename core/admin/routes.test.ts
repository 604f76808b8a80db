import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { capturingLogger } from '../../test/helpers/capture.ts';
import { StatusBoard } from '../runtime/status.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import type { KeyStore } from '../ssf/index.ts';
import { MetricsRegistry } from '../telemetry/metrics.ts';
import type { Transmitter } from '../transmitter/index.ts';
import { adminConfigSchema } from './config.ts';
import { registerAdmin } from './routes.ts';

// The admin API in process, over a store made to fail, for what a real bridge cannot be made to
// do on demand. The API as operators use it is tested on a running bridge in test/admin/.

const WRITE_TOKEN = 'write-token-0123456789abcdef';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function adminOver(store: SqliteStore) {
  const app = Fastify();
  const { logger, text } = capturingLogger();
  const clock = { now: () => new Date() };
  registerAdmin(app, {
    config: adminConfigSchema.parse({ tokens: [{ name: 'operator', role: 'write', token: WRITE_TOKEN }] }),
    store,
    keys: { list: () => [], rotatable: false } as unknown as KeyStore,
    transmitter: {} as Transmitter,
    status: new StatusBoard(clock),
    metrics: new MetricsRegistry(),
    clock,
    logger,
    instances: [],
    subjectAliases: [],
    issuer: () => 'http://127.0.0.1',
    engine: () => undefined,
  });
  await app.ready();
  cleanups.push(() => app.close());
  return { app, text };
}

function openStore(): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-admin-routes-'));
  const store = SqliteStore.open({ path: join(dir, 'bridge.db') });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

describe('admin API audit trail', () => {
  it('a write that fails with 500 before its action ran (the store failing on the stream lookup) is audited as failed', async () => {
    const store = openStore();
    const get = store.streams.get.bind(store.streams);
    store.streams.get = async (id) => {
      if (id === 'broken') throw new Error('disk I/O error');
      return get(id);
    };
    const { app } = await adminOver(store);
    const res = await app.inject({
      method: 'POST',
      url: '/admin/streams/broken/status',
      headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' },
      payload: { status: 'paused' },
    });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: 'internal_error', message: 'internal error; see the bridge log' });
    const [entry] = await store.operator.listAudit({ limit: 1 });
    expect(entry).toMatchObject({
      actor: 'operator',
      action: 'streams.status',
      target: 'broken',
      detail: { outcome: 'failed', status: 500, error: 'internal error; see the bridge log' },
    });
  });

  it('an audit entry that cannot be written does not change the answer; it is logged', async () => {
    const store = openStore();
    store.operator.recordAudit = async () => {
      throw new Error('database is locked');
    };
    const { app, text } = await adminOver(store);
    const res = await app.inject({
      method: 'POST',
      url: '/admin/streams/nope/status',
      headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' },
      payload: { status: 'paused' },
    });
    expect(res.statusCode).toBe(404);
    expect(text()).toContain('could not write the audit entry of an admin action');
  });

  it('an action that was done keeps its answer when its audit entry cannot be written; nothing says it failed', async () => {
    const store = openStore();
    const written: unknown[] = [];
    const record = store.operator.recordAudit.bind(store.operator);
    store.operator.recordAudit = async (entry) => {
      if ((entry.detail as { outcome?: string }).outcome === 'ok') throw new Error('database is locked');
      written.push(entry);
      return record(entry);
    };
    const { app, text } = await adminOver(store);
    const res = await app.inject({
      method: 'POST',
      url: '/admin/dead-letters/purge',
      headers: { authorization: `Bearer ${WRITE_TOKEN}`, 'content-type': 'application/json' },
      payload: { all: true },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ purged: 0 });
    expect(written).toEqual([]);
    expect(text()).toContain('could not write the audit entry of an admin action');
    expect(text()).toContain('dead_letters.purge');
  });
});

describe('admin API key rotation', () => {
  it('refuses to rotate keys from keys.files / keys.secrets with 409, and audits the refusal', async () => {
    const store = openStore();
    const { app } = await adminOver(store);
    const res = await app.inject({
      method: 'POST',
      url: '/admin/keys/rotate',
      headers: { authorization: `Bearer ${WRITE_TOKEN}` },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({
      error: 'conflict',
      message: 'signing keys come from keys.files / keys.secrets in the configuration; rotate them there',
    });
    const [entry] = await store.operator.listAudit({ limit: 1 });
    expect(entry).toMatchObject({ action: 'keys.rotate', detail: { outcome: 'refused', status: 409 } });
  });
});

describe('admin API event type filters', () => {
  const auth = { authorization: `Bearer ${WRITE_TOKEN}` };

  it('refuses a misspelt type in a listing with 400 and the nearest known name, not an empty page', async () => {
    const { app } = await adminOver(openStore());
    for (const path of ['/admin/events', '/admin/dead-letters']) {
      const res = await app.inject({ method: 'GET', url: `${path}?type=caep.session-revokd`, headers: auth });
      expect([path, res.statusCode, res.json()]).toEqual([
        path,
        400,
        {
          error: expect.any(String),
          message: expect.stringMatching(
            /^type "caep\.session-revokd" is not a known event type; did you mean "caep\.session-revoked"\?/,
          ),
        },
      ]);
    }
  });

  it('refuses a misspelt type in a replay or purge with 400, audited as refused, instead of "replayed 0"', async () => {
    const store = openStore();
    const { app } = await adminOver(store);
    for (const action of ['replay', 'purge']) {
      const res = await app.inject({
        method: 'POST',
        url: `/admin/dead-letters/${action}`,
        headers: { ...auth, 'content-type': 'application/json' },
        payload: { type: 'caep.sesion-revoked' },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toMatch(/did you mean "caep\.session-revoked"\?/);
      const [entry] = await store.operator.listAudit({ limit: 1 });
      expect(entry).toMatchObject({
        action: `dead_letters.${action}`,
        detail: { outcome: 'refused', status: 400 },
      });
    }
  });

  it('takes a known short name, its URI, or any absolute URI (a type the catalog may no longer know)', async () => {
    const { app } = await adminOver(openStore());
    for (const type of [
      'caep.session-revoked',
      'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
      'https://vendor.example/event-type/retired',
    ]) {
      const list = await app.inject({
        method: 'GET',
        url: `/admin/dead-letters?type=${encodeURIComponent(type)}`,
        headers: auth,
      });
      expect([type, list.statusCode]).toEqual([type, 200]);
      const replay = await app.inject({
        method: 'POST',
        url: '/admin/dead-letters/replay',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: { type },
      });
      expect([type, replay.statusCode, replay.json()]).toEqual([type, 200, { replayed: 0 }]);
    }
  });

  it('quotes at most 200 characters of a long unknown type, with no suggestion', async () => {
    const { app } = await adminOver(openStore());
    const res = await app.inject({
      method: 'GET',
      url: `/admin/events?type=${'x'.repeat(5000)}`,
      headers: auth,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toBe(
      `type "${'x'.repeat(200)}…" is not a known event type (give a short name such as caep.session-revoked, or an absolute URI)`,
    );
  });
});
