/**
 * The admin API's view of SSF streams with many streams: keyed pages, one stream read by id,
 * and deleted streams gone from the destinations of the overview.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../core/config/index.ts';
import { Bridge } from '../../core/runtime/bridge.ts';
import { configCrossChecks, defaultRegistry } from '../../core/runtime/defaults.ts';
import { silentLogger } from '../../core/telemetry/logger.ts';
import { READ_TOKEN, RECEIVER_TOKEN, Receiver, call, configText, eventually, ingest } from './harness.ts';

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

describe('admin API: SSF streams', () => {
  let bridge: Bridge;
  let receiver: Receiver;
  let dataDir: string;
  const admin = (path: string) => call(bridge.url, `/admin${path}`, { token: READ_TOKEN });
  const createStream = async () => {
    const created = await call(bridge.url, '/ssf/streams', {
      token: RECEIVER_TOKEN,
      body: { delivery: { method: 'urn:ietf:rfc:8936' }, events_requested: [SESSION_REVOKED] },
    });
    expect(created.status).toBe(201);
    return created.body.stream_id as string;
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ssf-admin-streams-'));
    receiver = new Receiver();
    await receiver.start();
    // A receiver may hold many streams, and every event goes to the streams too.
    const text = configText(receiver.url)
      .replace('    to: [hook]\n', '    to: [hook]\n    streams: true\n')
      .replace('transmitter:\n', 'transmitter:\n  streams:\n    per_receiver: many\n');
    expect(text).toContain('per_receiver: many');
    const loaded = await loadConfigText(text, {
      registry: defaultRegistry(),
      crossChecks: configCrossChecks(),
      env: { DATA_DIR: dataDir },
    });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    bridge = new Bridge(loaded.config, { logger: silentLogger() });
    await bridge.start();
  });
  afterAll(async () => {
    await bridge.stop(2_000);
    await receiver.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('pages streams oldest first in the store with keyed cursors, counting poll queues for the page only', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await createStream());
    await call(bridge.url, `/admin/streams/${ids[1]}/status`, {
      token: 'write-token-0123456789abcdef',
      body: { status: 'paused' },
    });
    const depth = bridge.store.streams.pollQueueDepth.bind(bridge.store.streams);
    const counted: string[] = [];
    bridge.store.streams.pollQueueDepth = (streamId) => {
      counted.push(streamId);
      return depth(streamId);
    };
    const list = bridge.store.streams.list.bind(bridge.store.streams);
    const listed: Array<Parameters<typeof list>[0]> = [];
    bridge.store.streams.list = (filter) => {
      listed.push(filter);
      return list(filter);
    };
    try {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await admin(`/streams?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.status).toBe(200);
        expect(page.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.body.items.map((s: { stream_id: string }) => s.stream_id));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(seen.filter((id) => ids.includes(id))).toEqual(ids);
      expect(counted).toEqual(seen);
      // Each page is read from the store by key: one row more than the page, never every stream.
      expect(listed.length).toBe(3);
      expect(listed.every((filter) => filter?.limit === 3)).toBe(true);
      expect(listed.slice(1).every((filter) => filter?.after !== undefined)).toBe(true);

      counted.length = 0;
      const first = await admin('/streams?limit=2');
      expect(counted).toEqual(first.body.items.map((s: { stream_id: string }) => s.stream_id));

      const enabled = await admin('/streams?status=enabled&limit=500');
      expect(enabled.body.items.map((s: { stream_id: string }) => s.stream_id)).toEqual(
        ids.filter((id) => id !== ids[1]),
      );
      expect((await admin('/streams?cursor=not-a-cursor')).status).toBe(400);
    } finally {
      bridge.store.streams.pollQueueDepth = depth;
      bridge.store.streams.list = list;
    }
  });

  it('reads one stream by its id without rendering every stream', async () => {
    const id = await createStream();
    const listStreams = bridge.transmitter.listStreams.bind(bridge.transmitter);
    bridge.transmitter.listStreams = () => Promise.reject(new Error('every stream rendered for one'));
    try {
      const detail = await admin(`/streams/${id}`);
      expect(detail.status).toBe(200);
      expect(detail.body).toEqual(
        expect.objectContaining({ stream_id: id, client_id: 'receiver', status: 'enabled' }),
      );
      expect(detail.body.config).toEqual(
        expect.objectContaining({ stream_id: id, events_requested: [SESSION_REVOKED] }),
      );
    } finally {
      bridge.transmitter.listStreams = listStreams;
    }
  });

  it('leaves deleted streams out of the destinations of the overview', async () => {
    const kept = await createStream();
    const gone = await createStream();
    await ingest(bridge.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'ana@example.com' }, id: 'ov-1' },
    ]);
    const destinations = async () =>
      ((await admin('/overview?window=1h')).body.destinations as Array<{ destination_id: string }>).map(
        (d) => d.destination_id,
      );
    await eventually(destinations, (ids) => ids.includes(`stream:${gone}`));
    await eventually(
      () => admin(`/deliveries?destination=stream:${gone}&state=delivered`),
      (r) => r.body.items.length > 0,
    );
    const deleted = await call(bridge.url, `/ssf/streams?stream_id=${gone}`, {
      token: RECEIVER_TOKEN,
      method: 'DELETE',
    });
    expect(deleted.status).toBe(204);
    const after = await eventually(destinations, (ids) => !ids.includes(`stream:${gone}`));
    expect(after).toEqual(expect.arrayContaining(['hook', `stream:${kept}`]));
    const listed = (await admin('/destinations?window=1h')).body.items.map(
      (d: { destination_id: string }) => d.destination_id,
    );
    expect(listed).not.toContain(`stream:${gone}`);
  });
});
