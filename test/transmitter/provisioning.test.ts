/**
 * Streams provisioned from the configuration (for receivers that expect a stream to exist), and
 * the quickstart receiver block.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../core/storage/sqlite/store.ts';
import { QUICKSTART_TOKEN, quickstartTransmitterConfig } from '../../core/transmitter/index.ts';
import {
  ALICE,
  POLL,
  PUSH,
  SESSION_REVOKED,
  call,
  decodeJwt,
  eventually,
  sessionRevoked,
  startBridge,
} from './harness.ts';

let dir: string;
let store: SqliteStore;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-tx-prov-'));
  store = SqliteStore.open({ path: join(dir, 'bridge.db') });
});

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const provisioned = {
  streams: { default_subjects: 'NONE' as const },
  provisioned_streams: [
    {
      stream_id: 'alice-main',
      client_id: ALICE.client_id,
      // A short name, as docs/transmitter.md shows it: streams carry the URI (SSF 1.0 §8.1.1).
      events_requested: ['caep.session-revoked'],
      description: 'from the configuration',
      subjects: [{ format: 'email', email: 'vip@example.com' }],
    },
  ],
};

describe('provisioned streams', () => {
  it("a provisioned push stream's authorization_header (the operator's secret) is sent, but never returned to the receiver", async () => {
    const pushDir = mkdtempSync(join(tmpdir(), 'ssf-tx-prov-push-'));
    const pushStore = SqliteStore.open({ path: join(pushDir, 'bridge.db') });
    const bridge = await startBridge({
      store: pushStore,
      transmitter: {
        provisioned_streams: [
          {
            stream_id: 'alice-push',
            client_id: ALICE.client_id,
            events_requested: [SESSION_REVOKED],
            delivery: {
              method: PUSH,
              endpoint_url: 'http://127.0.0.1:9/ssf/push',
              authorization_header: 'SSWS operator-api-key-0123456789',
            },
          },
        ],
      },
    });
    try {
      const read = await call(bridge.issuer, 'GET', 'ssf/streams', {
        token: ALICE.token,
        query: { stream_id: 'alice-push' },
      });
      expect(read.status).toBe(200);
      expect(read.json.delivery).toEqual({
        method: PUSH,
        endpoint_url: 'http://127.0.0.1:9/ssf/push',
      });
      expect(JSON.stringify(read.json)).not.toContain('operator-api-key');
      // What the pushes use is the configured value.
      const stored = await pushStore.streams.get('alice-push');
      expect(JSON.stringify(stored?.config)).toContain('SSWS operator-api-key-0123456789');

      // The receiver sends back the delivery it read (SSF 1.0 §8.1.1.3, §8.1.1.4): the hidden
      // header stays, for PATCH and for PUT, while the endpoint is the same.
      const readBack = read.json as Record<string, unknown>;
      const roundTrip = { stream_id: 'alice-push', delivery: readBack['delivery'], description: 'rt' };
      const patched = await call(bridge.issuer, 'PATCH', 'ssf/streams', {
        token: ALICE.token,
        body: roundTrip,
      });
      expect(patched.status).toBe(200);
      const put = await call(bridge.issuer, 'PUT', 'ssf/streams', {
        token: ALICE.token,
        body: { ...roundTrip, events_requested: [SESSION_REVOKED] },
      });
      expect(put.status).toBe(200);
      expect(JSON.stringify((await pushStore.streams.get('alice-push'))?.config)).toContain(
        'SSWS operator-api-key-0123456789',
      );
      // Another endpoint: the operator's secret does not follow the receiver there.
      const moved = await call(bridge.issuer, 'PATCH', 'ssf/streams', {
        token: ALICE.token,
        body: {
          stream_id: 'alice-push',
          delivery: { method: PUSH, endpoint_url: 'http://127.0.0.1:9/elsewhere' },
        },
      });
      expect(moved.status).toBe(200);
      expect(JSON.stringify((await pushStore.streams.get('alice-push'))?.config)).not.toContain(
        'operator-api-key',
      );
    } finally {
      await bridge.close();
      await pushStore.close();
      rmSync(pushDir, { recursive: true, force: true });
    }
  });

  it('exist at start with their id, events and subjects; the configuration wins again at the next start', async () => {
    const first = await startBridge({ store, transmitter: provisioned });
    try {
      const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
        call(first.issuer, method, path, { token: ALICE.token, body, ...(query ? { query } : {}) });
      const read = await api('GET', 'ssf/streams', undefined, { stream_id: 'alice-main' });
      expect(read.status).toBe(200);
      expect(read.json).toMatchObject({
        stream_id: 'alice-main',
        events_requested: [SESSION_REVOKED],
        events_delivered: [SESSION_REVOKED],
        delivery: { method: POLL, endpoint_url: `${first.issuer}/ssf/poll/alice-main` },
        description: 'from the configuration',
      });
      await first.ingest([sessionRevoked('vip@example.com'), sessionRevoked('nobody@example.com')]);
      const sets = await eventually(async () => {
        const res = await api('POST', 'ssf/poll/alice-main', { returnImmediately: true });
        return Object.keys(res.json.sets).length > 0 ? (res.json.sets as Record<string, string>) : undefined;
      });
      expect(Object.values(sets).map((j) => decodeJwt(j).payload.sub_id.email)).toEqual(['vip@example.com']);
      // The receiver changes it and pauses it.
      await api('PATCH', 'ssf/streams', { stream_id: 'alice-main', description: 'changed by the receiver' });
      await api('POST', 'ssf/status', { stream_id: 'alice-main', status: 'paused' });
    } finally {
      await first.close();
    }

    const second = await startBridge({ store, transmitter: provisioned });
    try {
      const read = await call(second.issuer, 'GET', 'ssf/streams', {
        token: ALICE.token,
        query: { stream_id: 'alice-main' },
      });
      expect(read.json.description).toBe('from the configuration');
      const status = await call(second.issuer, 'GET', 'ssf/status', {
        token: ALICE.token,
        query: { stream_id: 'alice-main' },
      });
      expect(status.json.status).toBe('paused');
      expect((await store.streams.list()).map((s) => s.streamId)).toEqual(['alice-main']);
    } finally {
      await second.close();
    }
  });
});

describe('quickstart', () => {
  it('the documented receiver token creates a poll stream, and an ingested event can be polled', async () => {
    const bridge = await startBridge({ transmitter: quickstartTransmitterConfig() });
    try {
      const created = await call(bridge.issuer, 'POST', 'ssf/streams', {
        token: QUICKSTART_TOKEN,
        body: { events_requested: [SESSION_REVOKED] },
      });
      expect(created.status).toBe(201);
      await bridge.ingest([sessionRevoked('newcomer@example.com')]);
      const sets = await eventually(async () => {
        const res = await call(bridge.issuer, 'POST', created.json.delivery.endpoint_url, {
          token: QUICKSTART_TOKEN,
          body: { returnImmediately: true },
        });
        return Object.keys(res.json.sets).length > 0 ? (res.json.sets as Record<string, string>) : undefined;
      });
      expect(Object.values(sets).map((j) => decodeJwt(j).payload.sub_id)).toEqual([
        { format: 'email', email: 'newcomer@example.com' },
      ]);
    } finally {
      await bridge.close();
    }
  });
});
