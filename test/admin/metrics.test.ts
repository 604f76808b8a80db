import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { loadConfigText } from '../../core/config/index.ts';
import { Bridge } from '../../core/runtime/bridge.ts';
import { configCrossChecks, defaultRegistry } from '../../core/runtime/defaults.ts';
import { silentLogger } from '../../core/telemetry/logger.ts';
import {
  INGEST_TOKEN,
  RECEIVER_TOKEN,
  Receiver,
  call,
  configText,
  eventually,
  ingest,
  startBridge,
  type Running,
} from './harness.ts';

describe('metrics and readiness', () => {
  let b: Running;
  const scrape = async () => (await fetch(`${b.url}/metrics`)).text();

  beforeAll(async () => {
    b = await startBridge();
  });
  afterAll(async () => {
    await b.stop();
  });

  it("lists each destination's delivery outcomes at 0 before any delivery", async () => {
    const text = await scrape();
    for (const outcome of ['delivered', 'retry', 'dead_letter']) {
      expect(text).toMatch(
        new RegExp(`^ssf_bridge_deliveries_total\\{destination="hook",outcome="${outcome}"\\} 0$`, 'm'),
      );
    }
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
    expect(text).toMatch(/ssf_bridge_events_received_total\{instance_id="api"\} 3\b/);
    expect(text).toMatch(/ssf_bridge_events_duplicate_total\{instance_id="api"\} 1\b/);
    expect(text).toMatch(/ssf_bridge_events_rejected_total\{instance_id="api"\} 1\b/);
    expect(text).toMatch(/ssf_bridge_deliveries_total\{destination="hook",outcome="dead_letter"\} 1\b/);
    expect(text).toMatch(/ssf_bridge_queue_depth/);
    expect(text).toMatch(
      /ssf_bridge_instance_state\{instance_id="hook",connector="webhook",kind="outbound"\} 0\b/,
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
      /ssf_bridge_instance_state\{instance_id="hook",connector="webhook",kind="outbound"\} 2\b/,
    );
    b.bridge.status.set('hook', 'ok');
  });

  it('is ready again once deliveries succeed after the destination refused the credentials', async () => {
    const state = /ssf_bridge_instance_state\{instance_id="hook",connector="webhook",kind="outbound"\} (\d)/;
    b.receiver.status = 401;
    await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'ivan@example.com' }, id: 'a1' },
    ]);
    await eventually(
      () => fetch(`${b.url}/readyz`).then((r) => r.status),
      (s) => s === 503,
    );
    expect(state.exec(await scrape())?.[1]).toBe('2');
    b.receiver.status = 200;
    await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'ivan@example.com' }, id: 'a2' },
    ]);
    await eventually(
      () => fetch(`${b.url}/readyz`).then((r) => r.status),
      (s) => s === 200,
    );
    expect(state.exec(await scrape())?.[1]).toBe('0');
  });

  it('serves every other series, and is not ready, while the store cannot be read', async () => {
    expect(await scrape()).toMatch(/^ssf_bridge_store_up 1$/m);
    const down = new Error('connect ECONNREFUSED 10.0.0.5:5432');
    const stats = vi.spyOn(b.bridge.store, 'stats').mockRejectedValue(down);
    const version = vi.spyOn(b.bridge.store, 'schemaVersion').mockRejectedValue(down);
    try {
      const res = await eventually(
        () => fetch(`${b.url}/metrics`).then(async (r) => ({ status: r.status, text: await r.text() })),
        (r) => r.status !== 200 || /^ssf_bridge_store_up 0$/m.test(r.text),
      );
      expect(res.status).toBe(200);
      expect(res.text).toMatch(/^ssf_bridge_store_up 0$/m);
      expect(res.text).toMatch(/ssf_bridge_deliveries_total\{destination="hook",outcome="delivered"\} \d+/);
      expect(res.text).toMatch(/ssf_bridge_instance_state\{instance_id="hook"/);
      expect(res.text).not.toMatch(/^ssf_bridge_queue_depth\{/m);
      const ready = await fetch(`${b.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({
        status: 'not_ready',
        reasons: ['store: connect ECONNREFUSED 10.0.0.5:5432'],
      });
    } finally {
      stats.mockRestore();
      version.mockRestore();
    }
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    await eventually(scrape, (t) => /^ssf_bridge_store_up 1$/m.test(t));
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

  it("the dashboard's failing scheduled runs are failed and missed runs only, not skips, holds or overlaps", async () => {
    const dashboard = JSON.parse(
      readFileSync(new URL('../../docs/operations/grafana-dashboard.json', import.meta.url), 'utf8'),
    ) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
    // The outcomes the scheduler counts, as its help text lists them.
    const help = /# HELP ssf_bridge_scheduled_runs_total .*\(([^)]*)\)/.exec(await scrape())?.[1];
    const outcomes = (help ?? '').split(',').map((o) => o.trim());
    expect(outcomes).toEqual(
      expect.arrayContaining(['ok', 'failed', 'missed', 'skipped', 'held', 'overlap']),
    );
    const panel = dashboard.panels.find((p) => /scheduled runs failing/i.test(p.title));
    const expr = panel?.targets?.[0]?.expr ?? '';
    const matcher = /ssf_bridge_scheduled_runs_total\{[^}]*\boutcome(=~|!~|!=|=)"([^"]*)"/.exec(expr);
    expect(matcher, expr).not.toBeNull();
    const [, op, value] = matcher!;
    const re = new RegExp(`^(?:${op === '=' || op === '!=' ? value!.replace(/[|.]/g, '\\$&') : value})$`);
    const selected = outcomes.filter((o) => re.test(o) === (op === '=' || op === '=~'));
    expect(selected.sort()).toEqual(['failed', 'missed']);
  });

  it('names connector instances instance_id, which Prometheus leaves alone, and the dashboard and alert rules query that', async () => {
    const operations = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    // Prometheus keeps `instance` for the scraped target: a series of the bridge carrying its own
    // `instance` would arrive renamed exported_instance (or, under honor_labels, replace the target).
    const text = await scrape();
    expect(text).not.toMatch(/^ssf_bridge_\w+\{(?:[^}]*,)?instance="/m);
    const labelled = new Set(
      [...text.matchAll(/^(ssf_bridge_\w+?)(?:_bucket|_count|_sum)?\{(?:[^}]*,)?instance_id="/gm)].map(
        (m) => m[1]!,
      ),
    );
    for (const name of ['ssf_bridge_events_received_total', 'ssf_bridge_instance_state']) {
      expect(labelled).toContain(name);
    }
    // The guide's scrape config is a plain one: nothing to rename.
    const scrapeConfig = /### Scraping[\s\S]*?```yaml\n([\s\S]*?)```/.exec(operations)?.[1] ?? '';
    const job = (parse(scrapeConfig) as { scrape_configs: Array<Record<string, any>> }).scrape_configs[0]!;
    expect(job['honor_labels']).not.toBe(true);
    expect(job['metric_relabel_configs']).toBeUndefined();
    const dashboard = JSON.parse(
      readFileSync(new URL('../../docs/operations/grafana-dashboard.json', import.meta.url), 'utf8'),
    ) as { panels: Array<{ title: string; targets?: Array<{ expr: string; legendFormat?: string }> }> };
    const alerts = /### Alert rules[\s\S]*?```yaml\n([\s\S]*?)```/.exec(operations)?.[1] ?? '';
    const rules = (parse(alerts) as { groups: Array<{ rules: Array<Record<string, any>> }> }).groups.flatMap(
      (g) => g.rules,
    );
    const queries = [
      ...dashboard.panels.flatMap((p) =>
        (p.targets ?? []).map((t) => ({ where: p.title, text: `${t.expr} ${t.legendFormat ?? ''}` })),
      ),
      ...rules.map((r) => ({
        where: r['alert'],
        text: `${r['expr']} ${JSON.stringify(r['annotations'] ?? {})}`,
      })),
    ];
    const connectorQueries = queries.filter((q) =>
      [...labelled, 'ssf_bridge_scheduled_run', 'ssf_bridge_connector_'].some((n) => q.text.includes(n)),
    );
    expect(connectorQueries.length).toBeGreaterThan(5);
    const wrong = connectorQueries
      .filter((q) =>
        /\b(by|on|without)\s*\([^)]*\binstance\b(?!_)|\{\{\s*(\$labels\.)?instance\s*\}\}/.test(q.text),
      )
      .map((q) => q.where);
    expect(wrong).toEqual([]);
  });
});

describe('metrics of SSF streams', () => {
  it("drops a deleted stream's delivery series, so streams that come and go do not grow /metrics", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ssf-metrics-streams-'));
    const receiver = new Receiver();
    await receiver.start();
    // Every event goes to the streams as well.
    const text = configText(receiver.url).replace('    to: [hook]\n', '    to: [hook]\n    streams: true\n');
    expect(text).toContain('streams: true');
    const loaded = await loadConfigText(text, {
      registry: defaultRegistry(),
      crossChecks: configCrossChecks(),
      env: { DATA_DIR: dataDir },
    });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const bridge = new Bridge(loaded.config, { logger: silentLogger() });
    await bridge.start();
    const scrape = async () => (await fetch(`${bridge.url}/metrics`)).text();
    const series = (metrics: string, id: string) =>
      metrics.split('\n').filter((line) => !line.startsWith('#') && line.includes(`"stream:${id}"`));
    try {
      // A receiver creates a stream, gets an event on it and deletes it, again and again.
      const deleted: string[] = [];
      for (let round = 0; round < 3; round += 1) {
        const created = await call(bridge.url, '/ssf/streams', {
          token: RECEIVER_TOKEN,
          body: {
            delivery: { method: 'urn:ietf:rfc:8936' },
            events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
          },
        });
        expect(created.status).toBe(201);
        const id = created.body.stream_id as string;
        await ingest(bridge.url, [
          {
            type: 'caep.session-revoked',
            subject: { format: 'email', email: 'ivan@example.com' },
            id: `round-${round}`,
          },
        ]);
        const live = await eventually(scrape, (t) =>
          series(t, id).some((l) => /^ssf_bridge_deliveries_total\{.*outcome="delivered"/.test(l)),
        );
        expect(series(live, id).some((l) => l.startsWith('ssf_bridge_delivery_latency_seconds_count'))).toBe(
          true,
        );
        // None of the deleted streams is listed; the live one is.
        expect(deleted.flatMap((d) => series(live, d))).toEqual([]);
        const gone = await call(bridge.url, `/ssf/streams?stream_id=${id}`, {
          token: RECEIVER_TOKEN,
          method: 'DELETE',
        });
        expect(gone.status).toBe(204);
        deleted.push(id);
        await eventually(scrape, (t) => series(t, id).length === 0);
      }
    } finally {
      await bridge.stop(2_000);
      await receiver.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('checkpoint time after a restart', () => {
  it('is the time the store kept, before the instance writes a checkpoint again', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ssf-metrics-checkpoint-'));
    const receiver = new Receiver();
    await receiver.start();
    const open = async () => {
      const loaded = await loadConfigText(configText(receiver.url), {
        registry: defaultRegistry(),
        crossChecks: configCrossChecks(),
        env: { DATA_DIR: dataDir },
      });
      if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
      const bridge = new Bridge(loaded.config, { logger: silentLogger() });
      await bridge.start();
      return bridge;
    };
    const written = new Date('2025-03-01T12:00:00Z');
    try {
      const first = await open();
      await first.store.checkpoints.set('api', 'default', { cursor: 'c1' }, written);
      await first.stop(2_000);
      const second = await open();
      try {
        const text = await eventually(
          async () => (await fetch(`${second.url}/metrics`)).text(),
          (t) => /^ssf_bridge_checkpoint_updated_timestamp_seconds\{instance_id="api"\}/m.test(t),
          2_000,
        );
        expect(text).toMatch(
          new RegExp(
            `^ssf_bridge_checkpoint_updated_timestamp_seconds\\{instance_id="api"\\} ${written.getTime() / 1000}$`,
            'm',
          ),
        );
      } finally {
        await second.stop(2_000);
      }
    } finally {
      await receiver.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
