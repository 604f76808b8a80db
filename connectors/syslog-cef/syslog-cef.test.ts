import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { isBridgeError, type EventDraft, type InboundConnector } from '../../core/plugin-api/index.ts';
import { createTestContext, type TestContext, type TestContextOptions } from '../_shared/edr-test-support.ts';
import { syslogCef } from './index.ts';

const rules = [
  {
    name: 'cef-high-risk-user',
    match: 'format = "cef" and cef.severity in ["8", "9", "10", "High"]',
    event_type: 'caep.risk-level-change',
    subject: '{"format": "email", "email": cef.extension.suser}',
    claims: {
      principal: '"USER"',
      current_level: '"HIGH"',
      risk_reason: 'cef.name',
      detail: 'cef.extension.msg',
    },
    id: 'cef.extension.externalId',
  },
  {
    name: 'leef-account-disabled',
    match: 'format = "leef" and leef.event_id = "AccountDisabled"',
    event_type: 'risc.account-disabled',
    subject: '{"format": "email", "email": leef.attributes.usrName}',
    id: 'leef.attributes.recordId',
  },
];

const MAX_LINE = 2048;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

const running: InboundConnector[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop(1_000);
});

async function listener(overrides: Record<string, unknown> = {}, options: TestContextOptions = {}) {
  const udpPort = await freePort();
  const tcpPort = await freePort();
  const t = createTestContext(options);
  const config = syslogCef.configSchema.parse({
    udp_port: udpPort,
    tcp_port: tcpPort,
    max_line_bytes: MAX_LINE,
    rate_limit: { per_second: 1_000_000, burst: 1_000_000 },
    batch_size: 50,
    batch_wait: '20ms',
    rules,
    ...overrides,
  });
  const connector = syslogCef.create(t.ctx, config);
  running.push(connector);
  await connector.start(t.abort.signal);
  return { t, connector, udpPort, tcpPort };
}

const OUTCOMES = ['mapped', 'ignored', 'malformed', 'unmapped', 'oversized', 'rate_limited', 'dropped'];

function counts(t: TestContext, transport: 'udp' | 'tcp'): Record<string, number> {
  return Object.fromEntries(
    OUTCOMES.map((outcome) => [outcome, t.counter('syslog_cef_lines_total', { transport, outcome })]),
  );
}

function handled(t: TestContext, transport: 'udp' | 'tcp'): number {
  return Object.values(counts(t, transport)).reduce((a, b) => a + b, 0);
}

/** The kinds of line the senders mix, by index. */
function line(i: number, source: string): { text: string; kind: string } {
  const stamp = `2026-03-02T09:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}Z`;
  switch (i % 6) {
    case 0:
      return {
        kind: 'cef',
        text: `<134>1 ${stamp} ids01.example.com arcsight - - - CEF:0|Acme\\|Sec|IDS\\\\Pro|4.2|3001|Alert \\| ${i} \\\\ done|9|suser=user${i}@example.com externalId=${source}-${i} msg=first line\\nsecond \\= half\\r act=block`,
      };
    case 1:
      return {
        kind: 'leef',
        text: `<13>Mar  2 09:20:00 qradar LEEF:2.0|Acme|Directory|1.0|AccountDisabled|^|usrName=user${i}@example.com^recordId=${source}-${i}^reason=left the company`,
      };
    case 2:
      return {
        kind: 'ignored',
        text: `<134>Mar  2 09:21:00 fw01 CEF:0|Acme|Edge|7.0|1002|Port scan|3|src=10.0.0.${i % 250} externalId=${source}-${i}`,
      };
    case 3:
      return { kind: 'garbage', text: `this is not syslog ${i}\n\tat com.example.Main(Main.java:${i})\n}}}` };
    case 4:
      return {
        kind: 'oversized',
        text: `<134>1 ${stamp} ids01 arcsight - - - CEF:0|Acme|IDS|4.2|9|Big|9|suser=big@example.com msg=${'x'.repeat(MAX_LINE + i)}`,
      };
    default:
      return {
        kind: 'unmapped',
        text: `<134>1 ${stamp} ids01 arcsight - - - CEF:0|Acme|IDS|4.2|77|No user|High|externalId=${source}-${i}`,
      };
  }
}

async function writeAll(socket: Socket, data: Buffer): Promise<void> {
  // Uneven chunks, so frames straddle writes.
  let at = 0;
  let size = 1;
  while (at < data.length) {
    const chunk = data.subarray(at, at + size);
    at += chunk.length;
    size = (size * 7 + 13) % 4_000 || 1;
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
}

async function tcpSend(port: number, data: Buffer): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  await writeAll(socket, data);
  await new Promise<void>((resolve) => socket.end(resolve));
}

async function udpSend(port: number, datagrams: string[], t: TestContext): Promise<void> {
  const socket = createSocket('udp4');
  try {
    for (let i = 0; i < datagrams.length; i += 50) {
      const slice = datagrams.slice(i, i + 50);
      await Promise.all(
        slice.map(
          (d) =>
            new Promise<void>((resolve, reject) =>
              socket.send(Buffer.from(d), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
            ),
        ),
      );
      // Paced, so the kernel's receive buffer never overflows: loopback loss is not what is tested.
      await t.until(() => handled(t, 'udp') >= i + slice.length, 5_000, 'the UDP datagrams');
    }
  } finally {
    socket.close();
  }
}

describe('syslog-cef listener', () => {
  it('maps thousands of lines over UDP and TCP (both framings), counting garbage and oversized lines', async () => {
    const { t, udpPort, tcpPort } = await listener();
    const N = 1_800;
    const tcpLf = Array.from({ length: N }, (_, i) => line(i, 'lf'));
    const tcpOctet = Array.from({ length: N }, (_, i) => line(i, 'oc'));
    const udp = Array.from({ length: N }, (_, i) => line(i, 'udp'));

    const lfData = Buffer.from(tcpLf.map((l) => `${l.text}\r\n`).join(''));
    const octetData = Buffer.concat(
      tcpOctet.map((l) => {
        const body = Buffer.from(l.text);
        return Buffer.concat([Buffer.from(`${body.length} `), body]);
      }),
    );
    await Promise.all([
      tcpSend(tcpPort, lfData),
      tcpSend(tcpPort, octetData),
      udpSend(
        udpPort,
        udp.map((l) => l.text),
        t,
      ),
    ]);

    const per = N / 6;
    // LF framing splits each three-line garbage block into three malformed lines.
    const tcpExpected = {
      mapped: 4 * per,
      ignored: 2 * per,
      malformed: 3 * per + per,
      unmapped: 2 * per,
      oversized: 2 * per,
      rate_limited: 0,
      dropped: 0,
    };
    const udpExpected = {
      ...tcpExpected,
      mapped: 2 * per,
      ignored: per,
      malformed: per,
      unmapped: per,
      oversized: per,
    };
    const tcpTotal = Object.values(tcpExpected).reduce((a, b) => a + b, 0);
    await t.until(() => handled(t, 'tcp') >= tcpTotal, 15_000, 'the TCP lines');
    expect(counts(t, 'tcp')).toEqual(tcpExpected);
    expect(counts(t, 'udp')).toEqual(udpExpected);

    const expectedEvents = 6 * per;
    await t.until(() => t.events().length >= expectedEvents, 5_000, 'the events');
    const events = t.events();
    expect(events).toHaveLength(expectedEvents);
    expect(t.counter('syslog_cef_events_total', { outcome: 'persisted' })).toBe(expectedEvents);
    expect(new Set(events.map((e) => e.sourceRecordId)).size).toBe(expectedEvents);
    expect(t.emitted.every((b) => b.events.length <= 50)).toBe(true);
    expect(events.filter((e) => e.type === 'caep.risk-level-change')).toHaveLength(3 * per);
    expect(events.filter((e) => e.type === 'risc.account-disabled')).toHaveLength(3 * per);

    const escaped = events.find((e) => e.sourceRecordId === 'oc-6');
    expect(escaped).toEqual({
      type: 'caep.risk-level-change',
      subject: { format: 'email', email: 'user6@example.com' },
      claims: {
        principal: 'USER',
        current_level: 'HIGH',
        risk_reason: 'Alert | 6 \\ done',
        detail: 'first line\nsecond = half\r',
      },
      sourceRecordId: 'oc-6',
    });
    expect(events.find((e) => e.sourceRecordId === 'udp-7')).toMatchObject({
      type: 'risc.account-disabled',
      subject: { format: 'email', email: 'user7@example.com' },
    });
    // Warnings are rate-limited: one per kind in the window, not one per bad line.
    const warnings = t.logs.filter((l) => l.level === 'warn');
    expect(warnings.length).toBeLessThanOrEqual(4);
    expect(warnings.map((w) => w.msg)).toEqual(
      expect.arrayContaining(['dropped a malformed syslog message', 'dropped an oversized syslog message']),
    );
  }, 30_000);

  it('drops what a sender sends over its rate limit, and counts it', async () => {
    const { t, udpPort } = await listener({ rate_limit: { per_second: 0.001, burst: 10 } });
    const lines = Array.from({ length: 60 }, (_, i) => line(i * 6, 'rl').text);
    await udpSend(udpPort, lines, t);
    expect(counts(t, 'udp')).toMatchObject({ mapped: 10, rate_limited: 50 });
    expect(t.logs.filter((l) => l.msg?.includes('rate limit'))).toHaveLength(1);
  });

  it('pauses TCP reading while the outbox is full and loses nothing; drops UDP meanwhile, counted', async () => {
    const { t, udpPort, tcpPort } = await listener({ batch_size: 10 });
    t.failNextEmits(2, 300);
    const tcpLines = Array.from({ length: 200 }, (_, i) => line(i * 6, 'bp').text);
    const sending = tcpSend(tcpPort, Buffer.from(tcpLines.map((l) => `${l}\n`).join('')));
    await t.until(() => t.emitted.some((b) => !b.ok), 5_000, 'a refused batch');
    const socket = createSocket('udp4');
    for (let i = 0; i < 20; i += 1) {
      await new Promise<void>((resolve) =>
        socket.send(Buffer.from(line(i * 6, 'bpu').text), udpPort, '127.0.0.1', () => resolve()),
      );
    }
    await t.until(() => handled(t, 'udp') >= 20, 5_000, 'the datagrams');
    socket.close();
    await sending;
    await t.until(() => t.events().length >= 200, 10_000, 'every TCP event');
    expect(counts(t, 'udp')).toMatchObject({ dropped: 20, mapped: 0 });
    expect(t.emitted.filter((b) => !b.ok)).toHaveLength(2);
    expect(new Set(t.events().map((e) => e.sourceRecordId)).size).toBe(200);
    expect(t.counter('syslog_cef_events_total', { outcome: 'persisted' })).toBe(200);
  });

  it('maps lines off the event loop: a rule running away on one line costs that line only', async () => {
    const { t, udpPort } = await listener({
      rules: [{ ...rules[0]!, match: 'format = "cef" and $contains(cef.name, /^(\\w+\\s?)*$/)' }],
    });
    const cef = (name: string, i: number) =>
      `CEF:0|Acme|IDS|4.2|3001|${name}|9|suser=user${i}@example.com externalId=slow-${i}`;
    const runaway = `${'word '.repeat(12)}${'a'.repeat(30)}!`;
    const socket = createSocket('udp4');
    let last = performance.now();
    let stall = 0;
    const ticker = setInterval(() => {
      stall = Math.max(stall, performance.now() - last);
      last = performance.now();
    }, 10);
    try {
      for (const text of [cef(runaway, 1), cef(runaway, 2), cef('Alert', 3)]) {
        await new Promise<void>((resolve) =>
          socket.send(Buffer.from(text), udpPort, '127.0.0.1', () => resolve()),
        );
      }
      await t.until(() => handled(t, 'udp') >= 3, 10_000, 'the three lines');
    } finally {
      clearInterval(ticker);
      stall = Math.max(stall, performance.now() - last);
      socket.close();
    }
    expect(stall).toBeLessThan(500);
    expect(counts(t, 'udp')).toMatchObject({ unmapped: 2, mapped: 1 });
    await t.until(() => t.events().length >= 1, 5_000, 'the event');
    expect(t.events().map((e) => e.sourceRecordId)).toEqual(['slow-3']);
    expect(t.logs.find((l) => l.msg === 'mapping rules failed on a syslog message')?.obj).toMatchObject({
      error: 'mapping rules could not be evaluated: evaluation took longer than 2000 ms',
    });
  }, 20_000);

  it('does no I/O in create, stops safely without start and twice, and reports a port in use', async () => {
    const port = await freePort();
    const t = createTestContext();
    const config = syslogCef.configSchema.parse({ tcp_port: port, rules });
    const idle = syslogCef.create(t.ctx, config);
    await idle.stop(100);
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(port, '127.0.0.1', resolve));
    try {
      const second = syslogCef.create(t.ctx, config);
      const error = await second.start(t.abort.signal).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isBridgeError(error) && error.errorClass).toBe('retryable');
      expect((error as Error).message).toMatch(/cannot listen for syslog on 127\.0\.0\.1/);
      await second.stop(100);
      await second.stop(100);
    } finally {
      await new Promise<void>((resolve) => probe.close(() => resolve()));
    }
    const { connector } = await listener();
    await connector.stop(100);
    await connector.stop(100);
  });

  // Read from the kernel's view of the accepted connection (ss, from iproute2).
  it.skipIf(!existsSync('/usr/bin/ss'))(
    'keeps TCP keepalive on for every sender, so a vanished host does not hold a connection slot for good',
    async () => {
      const { tcpPort } = await listener();
      const client = connect(tcpPort, '127.0.0.1');
      await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
      const accepted = async () =>
        (await promisify(execFile)('ss', ['-tnoH', 'state', 'established', `( sport = :${tcpPort} )`]))
          .stdout;
      try {
        // The listener sets the option as it accepts the connection, a moment after the handshake.
        let seen = await accepted();
        for (let i = 0; i < 40 && !/keepalive/.test(seen); i++) {
          await new Promise((r) => setTimeout(r, 25));
          seen = await accepted();
        }
        expect(seen).toMatch(/timer:\(keepalive,/);
      } finally {
        client.destroy();
      }
    },
  );

  it('refuses a config with no listener', () => {
    expect(() => syslogCef.configSchema.parse({ rules })).toThrow(/set udp_port, tcp_port or both/);
    expect(syslogCef.configSchema.parse({ udp_port: 5514, rules }).host).toBe('127.0.0.1');
  });
});

/** A CEF alert the first rule maps to one event with source record id `id`. */
function alert(i: number, id: string): string {
  return `<134>1 2026-03-02T09:14:27Z ids01 arcsight - - - CEF:0|Acme|IDS|4.2|3001|Impossible travel|9|suser=user${i}@example.com externalId=${id}`;
}

/** Sends datagrams one at a time, each once the listener has handled the one before. */
async function udpSendPaced(port: number, datagrams: string[], t: TestContext): Promise<void> {
  const socket = createSocket('udp4');
  try {
    for (const d of datagrams) {
      const before = handled(t, 'udp');
      await new Promise<void>((resolve, reject) =>
        socket.send(Buffer.from(d), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
      );
      await t.until(() => handled(t, 'udp') > before, 5_000, 'the datagram');
    }
  } finally {
    socket.close();
  }
}

const persisted = (t: TestContext) => t.counter('syslog_cef_events_total', { outcome: 'persisted' });
const refused = (t: TestContext) => t.counter('syslog_cef_events_total', { outcome: 'refused' });
const dropped = (t: TestContext) => t.counter('syslog_cef_events_total', { outcome: 'dropped' });

describe('syslog-cef hand-over to the pipeline', () => {
  it('hands a batch the pipeline refuses over one event at a time: only the refused event is lost, logged by its record id', async () => {
    // As the core does: a batch holding one invalid event is refused whole (PermanentError).
    const refuse = (event: EventDraft) =>
      event.sourceRecordId === 'ev-7'
        ? 'claims.risk_reason: holds U+0000 or half of a surrogate pair, which no store keeps'
        : undefined;
    const { t, tcpPort } = await listener({ batch_size: 20, batch_wait: '2s' }, { refuse });
    await tcpSend(
      tcpPort,
      Buffer.from(Array.from({ length: 20 }, (_, i) => `${alert(i, `ev-${i}`)}\n`).join('')),
    );
    await t.until(() => persisted(t) + refused(t) >= 20, 5_000, 'every event persisted or refused');

    expect(persisted(t)).toBe(19);
    expect(refused(t)).toBe(1);
    expect(t.events().map((e) => e.sourceRecordId)).toEqual(
      Array.from({ length: 20 }, (_, i) => `ev-${i}`).filter((id) => id !== 'ev-7'),
    );
    const refusals = t.emitted.filter((b) => !b.ok).map((b) => b.events.map((e) => e.sourceRecordId));
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toHaveLength(20);
    expect(refusals[1]).toEqual(['ev-7']);
    const logged = t.logs.filter((l) => l.level === 'error');
    expect(logged).toHaveLength(1);
    expect(logged[0]?.msg).toBe('the pipeline refused a syslog event; it is dropped');
    expect(logged[0]?.obj).toMatchObject({
      record: 'ev-7',
      type: 'caep.risk-level-change',
      transport: 'tcp',
      address: '127.0.0.1',
      code: 'SSF_ERR_PIPELINE_INVALID_EVENT',
    });
    // Where the event came from, never what it says.
    expect(JSON.stringify(logged[0]?.obj)).not.toContain('user7@example.com');
  });

  it('drops the NUL a C-string sender ends its message with, over UDP and in an octet-counted TCP frame', async () => {
    const { t, udpPort, tcpPort } = await listener();
    await udpSendPaced(udpPort, [`${alert(1, 'udp-1')}\0`, `${alert(2, 'udp-2')}\0\n`], t);
    const framed = Buffer.from(`${alert(3, 'tcp-3')}\0`);
    await tcpSend(tcpPort, Buffer.concat([Buffer.from(`${framed.length} `), framed]));
    await t.until(() => t.events().length >= 3, 5_000, 'the events');
    expect(
      t
        .events()
        .map((e) => e.sourceRecordId)
        .sort(),
    ).toEqual(['tcp-3', 'udp-1', 'udp-2']);
  });

  it('ends TCP frames at a NUL (RFC 6587 trailer) as at an LF, counting each oversized frame', async () => {
    const { t, tcpPort } = await listener();
    const frames = Array.from({ length: 300 }, (_, i) =>
      i % 50 === 25 ? `${alert(i, `big-${i}`)} msg=${'x'.repeat(MAX_LINE)}` : alert(i, `nul-${i}`),
    );
    await tcpSend(tcpPort, Buffer.from(frames.map((f) => `${f}\0`).join('')));
    await t.until(() => handled(t, 'tcp') >= 300, 5_000, 'every frame');
    expect(counts(t, 'tcp')).toMatchObject({ mapped: 294, oversized: 6, malformed: 0 });
    await t.until(() => t.events().length >= 294, 5_000, 'the events');
    expect(new Set(t.events().map((e) => e.sourceRecordId)).size).toBe(294);
  });
});

describe('syslog-cef per-sender rate limit', () => {
  it('slows a TCP sender over its rate instead of dropping what it sent', async () => {
    const { t, tcpPort } = await listener({ rate_limit: { per_second: 100, burst: 10 } });
    const started = Date.now();
    await tcpSend(
      tcpPort,
      Buffer.from(Array.from({ length: 60 }, (_, i) => `${alert(i, `rl-${i}`)}\n`).join('')),
    );
    await t.until(() => handled(t, 'tcp') >= 60, 10_000, 'every line');
    // 50 lines over the burst at 100 a second: about half a second, not a single loss.
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(counts(t, 'tcp')).toMatchObject({ mapped: 60, rate_limited: 0 });
    await t.until(() => t.events().length >= 60, 5_000, 'the events');
    expect(t.events().map((e) => e.sourceRecordId)).toEqual(Array.from({ length: 60 }, (_, i) => `rl-${i}`));
    expect(t.logs.filter((l) => l.msg?.includes('rate limit'))).toHaveLength(1);
  });

  it('spends no token on a malformed message or one that matches no rule, so noise does not crowd out alerts', async () => {
    const { t, udpPort } = await listener({ rate_limit: { per_second: 0.001, burst: 5 } });
    const garbage = Array.from({ length: 20 }, (_, i) => line(i * 6 + 3, 'n').text);
    const noise = Array.from({ length: 20 }, (_, i) => line(i * 6 + 2, 'n').text);
    const alerts = Array.from({ length: 5 }, (_, i) => alert(i, `al-${i}`));
    await udpSendPaced(udpPort, [...garbage, ...noise, ...alerts], t);
    expect(counts(t, 'udp')).toMatchObject({ malformed: 20, ignored: 20, mapped: 5, rate_limited: 0 });
    // The alerts spent the bucket: the limit still holds.
    await udpSendPaced(udpPort, [alert(5, 'al-5')], t);
    expect(counts(t, 'udp')).toMatchObject({ mapped: 5, rate_limited: 1 });
  });
});

describe('syslog-cef stop', () => {
  async function queued(t: TestContext, tcpPort: number, n: number): Promise<void> {
    await tcpSend(
      tcpPort,
      Buffer.from(Array.from({ length: n }, (_, i) => `${alert(i, `st-${i}`)}\n`).join('')),
    );
    await t.until(() => counts(t, 'tcp').mapped === n, 5_000, 'the lines mapped');
  }

  it('hands on what is queued within the stop deadline, though the pipeline asked to wait longer', async () => {
    const { t, connector, tcpPort } = await listener({ batch_size: 10 });
    t.failNextEmits(2, 20_000);
    await queued(t, tcpPort, 25);
    await t.until(() => t.emitted.some((b) => !b.ok), 5_000, 'a refused batch');
    const started = Date.now();
    await connector.stop(1_000);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(t.events()).toHaveLength(25);
    expect(persisted(t)).toBe(25);
    expect(dropped(t)).toBe(0);
    expect(t.logs.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('counts and logs the events it cannot make durable before the deadline', async () => {
    const { t, connector, tcpPort } = await listener({ batch_size: 10 });
    t.failNextEmits(1_000_000, 20);
    await queued(t, tcpPort, 25);
    await connector.stop(500);
    expect(t.events()).toHaveLength(0);
    expect(dropped(t)).toBe(25);
    expect(persisted(t) + refused(t)).toBe(0);
    const logged = t.logs.filter((l) => l.level === 'error');
    expect(logged).toHaveLength(1);
    expect(logged[0]?.obj).toMatchObject({ events: 25, lines: 0 });
  });

  it('counts the messages still waiting for the rules at the deadline as dropped', async () => {
    const { t, connector, udpPort } = await listener({
      rules: [{ ...rules[0]!, match: 'format = "cef" and $contains(cef.name, /^(\\w+\\s?)*$/)' }],
    });
    const runaway = `${'word '.repeat(12)}${'a'.repeat(30)}!`;
    const socket = createSocket('udp4');
    for (let i = 0; i < 3; i += 1) {
      const text = `CEF:0|Acme|IDS|4.2|3001|${runaway}|9|suser=user${i}@example.com externalId=slow-${i}`;
      await new Promise<void>((resolve) =>
        socket.send(Buffer.from(text), udpPort, '127.0.0.1', () => resolve()),
      );
    }
    socket.close();
    await new Promise((r) => setTimeout(r, 100));
    await connector.stop(300);
    expect(counts(t, 'udp')).toMatchObject({ dropped: 3, unmapped: 0, mapped: 0 });
    expect(t.logs.find((l) => l.level === 'error')?.obj).toMatchObject({ events: 0, lines: 3 });
  });

  it('counts a batch still in the pipeline at the deadline once the pipeline answers', async () => {
    const t = createTestContext();
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let reached = false;
    const ctx = {
      ...t.ctx,
      emit: async (...args: Parameters<typeof t.ctx.emit>) => {
        reached = true;
        await gate;
        return t.ctx.emit(...args);
      },
    };
    const tcpPort = await freePort();
    const connector = syslogCef.create(
      ctx,
      syslogCef.configSchema.parse({ tcp_port: tcpPort, batch_size: 5, batch_wait: '5s', rules }),
    );
    running.push(connector);
    await connector.start(t.abort.signal);
    await tcpSend(
      tcpPort,
      Buffer.from(Array.from({ length: 5 }, (_, i) => `${alert(i, `fl-${i}`)}\n`).join('')),
    );
    await t.until(() => reached, 5_000, 'the batch handed on');
    await connector.stop(300);
    expect(t.logs.find((l) => l.msg?.startsWith('stopped while the pipeline'))?.obj).toEqual({
      in_flight: 5,
    });
    expect(dropped(t)).toBe(0);
    release();
    await t.until(() => persisted(t) === 5, 5_000, 'the batch persisted');
    expect(dropped(t)).toBe(0);
  });
});
