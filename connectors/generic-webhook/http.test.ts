import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BridgeProcess } from '../../test/helpers/bridge-process.ts';
import { genericWebhook } from './index.ts';

// The connector as senders meet it: a bridge process with its HTTP server, pipeline and store.

const TOKEN = 'siem-ingest-token-4c2e9a';
const HMAC_KEY = 'dotnet-sender-hmac-key-77b1';
/** The connector's own example rule: SIEM alerts on users. */
const RULES = genericWebhook.examples![0]!.config.rules;

let dir: string;
let bridge: BridgeProcess;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-generic-webhook-'));
  const config = {
    server: { host: '127.0.0.1', port: 0, shutdown_timeout: '2s' },
    data_dir: join(dir, 'data'),
    inbound: [
      {
        id: 'siem',
        connector: 'generic-webhook',
        config: { auth: { type: 'bearer', token: TOKEN }, rules: RULES },
      },
      {
        id: 'signed',
        connector: 'generic-webhook',
        config: { auth: { type: 'hmac', key: HMAC_KEY, prefix: 'sha256=' }, rules: RULES },
      },
    ],
    outbound: [
      { id: 'out', connector: 'log', config: { audience: 'urn:generic-webhook:test', format: 'compact' } },
    ],
    routes: [{ id: 'all', from: '*', to: ['out'] }],
  };
  writeFileSync(join(dir, 'bridge.json'), JSON.stringify(config));
  bridge = new BridgeProcess(['run', '--config', join(dir, 'bridge.json')], { cwd: dir });
  base = await bridge.url();
}, 60_000);

afterAll(async () => {
  bridge.kill('SIGTERM');
  const timer = setTimeout(() => bridge.kill('SIGKILL'), 5_000);
  await bridge.exited;
  clearTimeout(timer);
  rmSync(dir, { recursive: true, force: true });
});

const alert = (id: string, over: Record<string, unknown> = {}) => ({
  alert_id: id,
  severity: 'high',
  title: 'Impossible travel',
  user: { email: 'dana.lee@example.com' },
  created_at: '2026-03-02T09:14:27Z',
  ...over,
});

async function post(body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/ingest/siem`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('generic-webhook over HTTP', () => {
  it('refuses a record holding U+0000 or half a surrogate pair as that record’s rule problem, naming it', async () => {
    for (const [title, path] of [
      ['Impossible\u0000travel', 'claims.risk_reason'],
      ['Impossible travel \ud83d', 'claims.risk_reason'],
    ]) {
      const answer = await post([alert('NUL-1'), alert('NUL-2', { title })]);
      expect(answer).toEqual({
        status: 400,
        body: {
          error: 'invalid_request',
          problems: [
            {
              record: 1,
              message: expect.stringMatching(
                new RegExp(
                  `^rule "high-risk-user", ${path}: ${path} holds U\\+0000 or half of a surrogate pair, which no store keeps \\(expression: title; record: title = `,
                ),
              ) as string,
            },
          ],
        },
      });
    }
    // Nothing of the request was kept: the records the sender can fix and resend map as usual.
    expect(await post([alert('NUL-1'), alert('NUL-2', { title: 'Impossible travel' })])).toMatchObject({
      status: 202,
      body: { duplicates: 0, ignored: 0 },
    });
  });

  it('takes a JSON null created_at as no time given: the event occurs when the bridge accepts it', async () => {
    const answer = await post([alert('NULL-1', { created_at: null }), alert('NULL-2')]);
    expect(answer).toMatchObject({ status: 202, body: { duplicates: 0, ignored: 0 } });
    expect(answer.body.accepted).toHaveLength(2);
  });

  it('parses a body that starts with a UTF-8 byte order mark, and checks the signature over the bytes as sent', async () => {
    // As .NET's UTF8Encoding and PowerShell 5 write JSON: EF BB BF before the first brace.
    const raw = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(alert('BOM-1')))]);
    const sign = (bytes: Buffer) => `sha256=${createHmac('sha256', HMAC_KEY).update(bytes).digest('hex')}`;
    const send = (signature: string) =>
      fetch(`${base}/ingest/signed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', 'x-signature': signature },
        body: raw,
      });
    // A signature over the body without its BOM is not the sender's: refused.
    expect((await send(sign(raw.subarray(3)))).status).toBe(403);
    const accepted = await send(sign(raw));
    expect(accepted.status).toBe(202);
    expect(await accepted.json()).toMatchObject({
      duplicates: 0,
      ignored: 0,
      accepted: [expect.any(String)],
    });
  });
});
