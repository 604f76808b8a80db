import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOKEN, call, eventually, ingest, startBridge, type Running } from './harness.ts';

describe('metrics and readiness', () => {
  let b: Running;
  const scrape = async () => (await fetch(`${b.url}/metrics`)).text();

  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(async () => {
    await b.stop();
  });

  it('exposes per-instance event, delivery, queue and state metrics with process metrics', async () => {
    b.receiver.status = 400;
    await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'ivan@example.com' }, id: 'r1' },
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'ivan@example.com' }, id: 'r1' },
    ]);
    const refused = await call(b.url, '/ingest/api', {
      token: INGEST_TOKEN,
      body: [{ type: 'caep.session-revoked', subject: { format: 'email' } }],
    });
    expect(refused.status).toBe(400);
    const text = await eventually(scrape, (t) => /ssf_bridge_dead_letters\{destination="hook"\} 1\b/.test(t));
    b.receiver.status = 200;
    expect(text).toMatch(/ssf_bridge_events_received_total\{instance="api"\} 3\b/);
    expect(text).toMatch(/ssf_bridge_events_duplicate_total\{instance="api"\} 1\b/);
    expect(text).toMatch(/ssf_bridge_events_rejected_total\{instance="api"\} 1\b/);
    expect(text).toMatch(/ssf_bridge_deliveries_total\{destination="hook",outcome="dead_letter"\} 1\b/);
    expect(text).toMatch(/ssf_bridge_queue_depth/);
    expect(text).toMatch(
      /ssf_bridge_instance_state\{instance="hook",connector="webhook",kind="outbound"\} 0\b/,
    );
    expect(text).toMatch(/ssf_bridge_process_cpu_seconds_total/);
    expect(text).toMatch(/ssf_bridge_nodejs_eventloop_lag_seconds/);
  });

  it('is not ready while a connector is in permanent error, and says which', async () => {
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    b.bridge.status.set('hook', 'permanent_error', 'credentials refused: 401');
    const res = await fetch(`${b.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: 'not_ready',
      reasons: ['hook: permanent_error (credentials refused: 401)'],
    });
    expect(await scrape()).toMatch(
      /ssf_bridge_instance_state\{instance="hook",connector="webhook",kind="outbound"\} 2\b/,
    );
    b.bridge.status.set('hook', 'ok');
  });

  it('the Grafana dashboard only queries metrics the bridge exposes', async () => {
    const dashboard = readFileSync(
      new URL('../../docs/operations/grafana-dashboard.json', import.meta.url),
      'utf8',
    );
    const names = new Set(
      [...dashboard.matchAll(/ssf_bridge_[a-z0-9_]+/g)].map((m) => m[0].replace(/_bucket$/, '')),
    );
    // The leader gauge exists only where instances share PostgreSQL.
    names.delete('ssf_bridge_scheduler_leader');
    const text = await scrape();
    const missing = [...names].filter((name) => !text.includes(`# TYPE ${name} `));
    expect(missing).toEqual([]);
    expect(names.size).toBeGreaterThan(12);
  });
});
