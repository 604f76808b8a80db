import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  INGEST_TOKEN,
  READ_TOKEN,
  RECEIVER_TOKEN,
  WRITE_TOKEN,
  call,
  eventually,
  ingest,
  startBridge,
  type Running,
} from './harness.ts';

const ALIASES = `
subjects:
  aliases:
    - from: { format: opaque, id: emp-42 }
      to: { format: email, email: carol@example.com }
`;

const revoked = (subject: unknown, id?: string) => ({
  type: 'caep.session-revoked',
  subject,
  ...(id ? { id } : {}),
});

describe('admin API', () => {
  let b: Running;
  const admin = (path: string, options: Parameters<typeof call>[2] = {}) =>
    call(b.url, `/admin${path}`, { token: READ_TOKEN, ...options });
  const write = (path: string, body: unknown = {}, method = 'POST') =>
    call(b.url, `/admin${path}`, { token: WRITE_TOKEN, body, method });
  const delivered = (eventId: string) =>
    eventually(
      () => admin(`/deliveries?event=${eventId}`),
      (r) => r.body.items.length > 0 && r.body.items.every((d: any) => d.state === 'delivered'),
    );

  beforeAll(async () => {
    b = await startBridge(ALIASES);
  });
  afterAll(async () => {
    await b.stop();
  });

  describe('authentication and roles', () => {
    it('answers 401 without a token, and to receiver and ingest tokens', async () => {
      for (const token of [undefined, RECEIVER_TOKEN, INGEST_TOKEN, `${READ_TOKEN}x`]) {
        const res = await call(b.url, '/admin/instances', token ? { token } : {});
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toContain('Bearer');
        expect(res.body.error).toBe('unauthorized');
      }
    });

    it('names the token holder and role', async () => {
      expect((await admin('/session')).body).toEqual({ name: 'viewer', role: 'read' });
      expect((await call(b.url, '/admin/session', { token: WRITE_TOKEN })).body).toEqual({
        name: 'operator',
        role: 'write',
      });
    });

    it('refuses every write action to a read token with 403, does none of them, and audits each refusal', async () => {
      const before = (await admin('/audit')).body.items.length;
      const keysBefore = (await admin('/keys')).body.items.length;
      const attempts = [
        ['POST', '/dead-letters/replay', 'dead_letters.replay', '/admin/dead-letters/replay'],
        ['POST', '/dead-letters/purge', 'dead_letters.purge', '/admin/dead-letters/purge'],
        ['POST', '/keys/rotate', 'keys.rotate', '/admin/keys/rotate'],
        ['POST', '/streams/any/status', 'streams.status', 'any'],
        ['DELETE', '/streams/any', 'streams.delete', 'any'],
      ] as const;
      for (const [method, path] of attempts) {
        const res = await admin(path, { method, body: { all: true } });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.body.error).toBe('forbidden');
      }
      expect((await admin('/keys')).body.items.length).toBe(keysBefore);
      const audit = (await admin(`/audit?actor=viewer&limit=${attempts.length}`)).body.items;
      expect((await admin('/audit')).body.items.length).toBe(before + attempts.length);
      expect(audit.map((a: any) => [a.action, a.target]).reverse()).toEqual(
        attempts.map(([, , action, target]) => [action, target]),
      );
      expect(audit[0]).toMatchObject({
        actor: 'viewer',
        role: 'read',
        detail: {
          outcome: 'refused',
          status: 403,
          error: 'token "viewer" has the read role; this needs write',
        },
      });
    });

    it('answers 415 to a write whose body is not JSON (curl -d sends a form), naming the type to use', async () => {
      const res = await fetch(`${b.url}/admin/streams/nope/status`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${WRITE_TOKEN}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'status=paused',
      });
      expect(res.status).toBe(415);
      expect(await res.json()).toEqual({
        error: 'unsupported_media_type',
        message:
          'send the body as JSON (Content-Type: application/json), not application/x-www-form-urlencoded',
      });
      const [entry] = (await admin('/audit?actor=operator&limit=1')).body.items;
      expect(entry).toMatchObject({ action: 'streams.status', detail: { outcome: 'refused', status: 415 } });
      // A write without a body (key rotation) is not affected.
      const rotate = await fetch(`${b.url}/admin/keys/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${READ_TOKEN}` },
      });
      expect(rotate.status).toBe(403);
    });

    it('audits a write refused for its parameters, and never a read', async () => {
      const reads = (await admin('/audit')).body.items.length;
      await admin('/streams?status=enabled');
      await admin('/streams/nope');
      expect((await admin('/audit')).body.items.length).toBe(reads);
      expect((await write('/streams/nope/status', { status: 'paused' })).status).toBe(404);
      expect((await write('/dead-letters/purge', {})).status).toBe(400);
      const [purge, status] = (await admin('/audit?actor=operator&limit=2')).body.items;
      expect(status).toMatchObject({
        action: 'streams.status',
        target: 'nope',
        detail: { outcome: 'refused', status: 404, error: 'no stream "nope"' },
      });
      expect(purge).toMatchObject({
        action: 'dead_letters.purge',
        detail: { outcome: 'refused', status: 400 },
      });
    });

    it('never lets answers be cached', async () => {
      expect((await admin('/session')).headers.get('cache-control')).toBe('no-store');
    });
  });

  describe('events, deliveries and the subject timeline', () => {
    it('pages events newest first with filters and a cursor', async () => {
      const ids = await ingest(
        b.url,
        Array.from({ length: 7 }, (_, i) => revoked({ format: 'email', email: `pager${i}@example.com` })),
      );
      const seen: string[] = [];
      let cursor: string | null = '';
      while (cursor !== null) {
        const res = await admin(
          `/events?instance=api&limit=3&subject=pager${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(res.status).toBe(200);
        expect(res.body.items.length).toBeLessThanOrEqual(3);
        seen.push(...res.body.items.map((e: any) => e.id));
        cursor = res.body.next_cursor;
      }
      expect(new Set(seen)).toEqual(new Set(ids));
      const typed = await admin('/events?type=caep.credential-change');
      expect(typed.body.items).toEqual([]);
      expect((await admin('/events?limit=0')).status).toBe(400);
      expect((await admin('/events?limit=501')).status).toBe(400);
      expect((await admin('/events?cursor=not-a-cursor')).status).toBe(400);
      expect((await admin('/events?since=yesterday')).status).toBe(400);
    });

    it('shows a subject timeline across aliases, complex subjects and configured aliases', async () => {
      const [plain] = await ingest(b.url, [revoked({ format: 'email', email: 'Alice@Example.com' })]);
      const [complex] = await ingest(b.url, [
        {
          type: 'caep.device-compliance-change',
          subject: {
            format: 'complex',
            user: { format: 'email', email: 'alice@example.com' },
            device: { format: 'opaque', id: 'laptop-7' },
          },
          claims: { previous_status: 'compliant', current_status: 'not-compliant' },
        },
      ]);
      const [aliased] = await ingest(b.url, [
        revoked({
          format: 'aliases',
          identifiers: [
            { format: 'opaque', id: 'u-1' },
            { format: 'email', email: 'alice@example.com' },
          ],
        }),
      ]);
      await ingest(b.url, [revoked({ format: 'email', email: 'malice@example.com' })]);
      for (const id of [plain!, complex!, aliased!]) await delivered(id);

      const res = await admin('/timeline?subject=alice@example.com');
      expect(res.status).toBe(200);
      expect(res.body.items.map((i: any) => i.event.id)).toEqual([aliased, complex, plain]);
      for (const item of res.body.items) {
        expect(item.deliveries).toEqual([
          expect.objectContaining({
            destination_id: 'hook',
            state: 'delivered',
            answer: expect.objectContaining({ outcome: 'accepted' }),
          }),
        ]);
      }
      const firstPage = await admin('/timeline?subject=alice@example.com&limit=2');
      expect(firstPage.body.items.length).toBe(2);
      const rest = await admin(
        `/timeline?subject=alice@example.com&limit=2&cursor=${firstPage.body.next_cursor}`,
      );
      expect(rest.body.items.map((i: any) => i.event.id)).toEqual([plain]);

      const [carol] = await ingest(b.url, [revoked({ format: 'opaque', id: 'emp-42' })]);
      const viaAlias = await admin('/timeline?subject=emp-42');
      expect(viaAlias.body.terms).toEqual(['emp-42', 'carol@example.com']);
      expect(viaAlias.body.items.map((i: any) => i.event.id)).toEqual([carol]);
      expect((await admin('/timeline')).status).toBe(400);
    });

    it('shows a delivery with its decoded SET and the receiver answer', async () => {
      const [id] = await ingest(b.url, [revoked({ format: 'email', email: 'dora@example.com' })]);
      const list = await delivered(id!);
      const detail = await admin(`/deliveries/${list.body.items[0].id}`);
      expect(detail.status).toBe(200);
      expect(detail.body.answer.outcome).toBe('accepted');
      expect(detail.body.event.id).toBe(id);
      expect(detail.body.set.source).toBe('rebuilt');
      const sent = b.receiver.received.find((r: any) =>
        JSON.stringify(r).includes('dora@example.com'),
      ) as any;
      const sentClaims = JSON.parse(Buffer.from(String(sent.set).split('.')[1]!, 'base64url').toString());
      expect(detail.body.set.claims).toEqual(sentClaims);
      expect((await admin('/deliveries/999999')).status).toBe(404);
      const page = await admin('/deliveries?destination=hook&state=delivered&limit=2');
      expect(page.body.items.length).toBe(2);
      expect(page.body.next_cursor).toEqual(expect.any(String));
      expect((await admin('/deliveries?state=weird')).status).toBe(400);
      expect((await admin(`/events/${id}`)).body.deliveries[0].state).toBe('delivered');
    });
  });

  it('rebuilds the SET of an event held until its future occurred-at with the iat it was sent with (RFC 8417 §2.2)', async () => {
    const held = await startBridge('', 'future_events: { tolerance: 1s, check_interval: 200ms }');
    try {
      const occurredAt = new Date(Date.now() + 2_500).toISOString();
      const [id] = await ingest(held.url, [
        { ...revoked({ format: 'email', email: 'later@example.com' }), occurred_at: occurredAt },
      ]);
      const list = await eventually(
        () => call(held.url, `/admin/deliveries?event=${id}`, { token: READ_TOKEN }),
        (r) => r.body.items.length > 0 && r.body.items.every((d: any) => d.state === 'delivered'),
      );
      const detail = await call(held.url, `/admin/deliveries/${list.body.items[0].id}`, {
        token: READ_TOKEN,
      });
      const sent = held.receiver.received.find((r: any) =>
        JSON.stringify(r).includes('later@example.com'),
      ) as any;
      const sentClaims = JSON.parse(Buffer.from(String(sent.set).split('.')[1]!, 'base64url').toString());
      expect(sentClaims.iat).toBe(Math.floor(Date.parse(occurredAt) / 1000));
      expect(detail.body.set.claims).toEqual(sentClaims);
    } finally {
      await held.stop();
    }
  });

  describe('dead letters', () => {
    it('lists, shows, replays (write role only) and audits', async () => {
      b.receiver.status = 400;
      const [id] = await ingest(b.url, [revoked({ format: 'email', email: 'erin@example.com' })]);
      const dead = await eventually(
        () => admin('/dead-letters?destination=hook'),
        (r) => r.body.items.some((l: any) => l.event_id === id),
      );
      expect(dead.body.total).toBeGreaterThanOrEqual(1);
      const letter = dead.body.items.find((l: any) => l.event_id === id);
      expect(letter.last_error.status).toBe(400);
      const shown = await admin(`/dead-letters/${letter.id}`);
      // The same field names as the list (snake_case), plus the source record id.
      expect(shown.body.letter).toEqual({ ...letter, source_record_id: expect.any(String) });
      expect(shown.body.set.source).toBe('stored');
      expect(shown.body.set.claims.jti).toBe(letter.jti);
      // The signed SET itself goes to write tokens only: a read token sees what it says, but gets
      // nothing a receiver would accept as a delivery.
      expect(shown.body.set.jwt).toBeUndefined();
      expect(shown.body.set.jwt_withheld).toMatch(/write tokens only/);
      expect(JSON.stringify(shown.body)).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/);
      for (const path of [`/dead-letters/${letter.id}`, `/deliveries/${letter.id}`]) {
        const full = await call(b.url, `/admin${path}`, { token: WRITE_TOKEN });
        expect(full.body.set.jwt_withheld).toBeUndefined();
        const [, payload] = String(full.body.set.jwt).split('.');
        expect(JSON.parse(Buffer.from(payload!, 'base64url').toString())).toEqual(shown.body.set.claims);
      }
      expect((await admin(`/deliveries/${letter.id}`)).body.set.jwt).toBeUndefined();

      b.receiver.status = 200;
      expect((await admin('/dead-letters/replay', { body: { ids: [letter.id] } })).status).toBe(403);
      const replayed = await write('/dead-letters/replay', { ids: [letter.id] });
      expect(replayed.body).toEqual({ replayed: 1 });
      await delivered(id!);
      // A replay sends the same SET again (RFC 8417 §2.2: the jti names it), as `dlq replay` does:
      // a receiver that saw it before recognises it.
      const sent = b.receiver.received.filter((r: any) => JSON.stringify(r).includes('erin@example.com'));
      const jtis = sent.map(
        (r: any) => JSON.parse(Buffer.from(String(r.set).split('.')[1]!, 'base64url').toString()).jti,
      );
      expect(jtis).toEqual([letter.jti]);
      expect((await admin(`/deliveries?event=${id}`)).body.items.map((d: any) => d.jti)).toEqual([
        letter.jti,
      ]);

      const audit = await admin('/audit?actor=operator&action=dead_letters.replay');
      expect(audit.body.items[0]).toEqual(
        expect.objectContaining({
          actor: 'operator',
          role: 'write',
          action: 'dead_letters.replay',
          detail: expect.objectContaining({ outcome: 'ok', result: 1, filter: { ids: [letter.id] } }),
        }),
      );
      expect(Date.parse(audit.body.items[0].at)).toBeGreaterThan(Date.now() - 60_000);
    });

    it('purges only what is named, and refuses an unnamed purge', async () => {
      expect((await write('/dead-letters/purge', {})).status).toBe(400);
      // More ids than one statement may bind: a 400 that says what to do, never a 500.
      const many = Array.from({ length: 40_000 }, (_, i) => i + 1);
      const tooMany = await write('/dead-letters/purge', { ids: many });
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.message).toBe(
        'at most 1000 ids in one request (got 40000); send them in several, or filter by destination, type and time',
      );
      expect((await write('/dead-letters/replay', { ids: many.slice(0, 1000) })).body).toEqual({
        replayed: 0,
      });
      b.receiver.status = 400;
      const [id] = await ingest(b.url, [revoked({ format: 'email', email: 'frank@example.com' })]);
      const dead = await eventually(
        () => admin('/dead-letters'),
        (r) => r.body.items.some((l: any) => l.event_id === id),
      );
      b.receiver.status = 200;
      const letter = dead.body.items.find((l: any) => l.event_id === id);
      expect((await write('/dead-letters/purge', { ids: [letter.id] })).body).toEqual({ purged: 1 });
      expect((await admin(`/dead-letters/${letter.id}`)).status).toBe(404);
    });

    it('refuses a replay or purge body with an unknown key or a mistyped filter, touching no letter', async () => {
      b.receiver.status = 400;
      const ids = await ingest(b.url, [
        revoked({ format: 'email', email: 'gina@example.com' }),
        revoked({ format: 'email', email: 'hugo@example.com' }),
      ]);
      const letters = async () =>
        (await admin('/dead-letters?destination=hook&limit=500')).body.items
          .filter((l: any) => ids.includes(l.event_id))
          .map((l: any) => l.id)
          .sort();
      const dead = await eventually(letters, (found) => found.length === 2);
      b.receiver.status = 200;
      const since = '2000-01-01T00:00:00Z';
      const bodies: Array<[unknown, string]> = [
        [{ destination: ['other-destination'], since }, 'destination must be a non-empty string'],
        [
          { destination_id: 'other-destination', since },
          'unknown key "destination_id"; the letters are named by ids, destination, type, since, until, all',
        ],
        [{ type: 7, since }, 'type must be a non-empty string'],
        [{ destination: '', since }, 'destination must be a non-empty string'],
        [{ since: [since] }, 'since must be a non-empty string'],
        [{ ids: dead.map(String) }, 'ids must be an array of dead letter ids'],
        [{ all: 'true' }, 'all must be true or false'],
        [[{ all: true }], 'the body must be a JSON object'],
      ];
      for (const action of ['replay', 'purge'] as const) {
        for (const [body, message] of bodies) {
          const res = await write(`/dead-letters/${action}`, body);
          expect([action, body, res.status, res.body]).toEqual([
            action,
            body,
            400,
            { error: 'invalid_request', message },
          ]);
          const [entry] = (await admin('/audit?actor=operator&limit=1')).body.items;
          expect(entry).toMatchObject({
            action: `dead_letters.${action}`,
            detail: { outcome: 'refused', status: 400, error: message },
          });
          expect(await letters()).toEqual(dead);
        }
      }
    });
  });

  describe('query parameters', () => {
    it('refuses a parameter given twice with 400, never a 500 or a filter on the joined text', async () => {
      for (const [path, name] of [
        ['/events?type=caep.session-revoked&type=caep.credential-change', 'type'],
        ['/events?subject=alice&subject=bob', 'subject'],
        ['/events?instance=api&instance=other', 'instance'],
        ['/deliveries?destination=hook&destination=other', 'destination'],
        ['/dead-letters?type=a&type=b', 'type'],
        ['/timeline?subject=alice@example.com&subject=bob@example.com', 'subject'],
        ['/audit?actor=operator&actor=viewer', 'actor'],
        ['/instances?limit=1&limit=2', 'limit'],
      ] as const) {
        const res = await admin(path);
        expect([path, res.status, res.body]).toEqual([
          path,
          400,
          { error: 'invalid_request', message: `give ${name} once` },
        ]);
      }
    });

    it('refuses a day the calendar lacks and a reversed time range with 400, on lists and on replay and purge', async () => {
      const lists = ['/events', '/dead-letters', '/audit', '/timeline?subject=alice@example.com'];
      const withQuery = (list: string, q: string) => `${list}${list.includes('?') ? '&' : '?'}${q}`;
      for (const list of lists) {
        // Date would take 2026-02-30 for March 2 and 2026-04-31 for May 1.
        for (const day of ['2026-02-30', '2026-04-31T09:00:00Z', '2025-02-29', '2026-13-01', '2026-00-10']) {
          const res = await admin(withQuery(list, `since=${day}`));
          expect([list, day, res.status, res.body.message]).toEqual([
            list,
            day,
            400,
            'since must be an ISO 8601 time, e.g. 2026-01-31T09:00:00Z',
          ]);
        }
        expect((await admin(withQuery(list, 'since=2024-02-29'))).status).toBe(200);
        const reversed = await admin(
          withQuery(list, 'since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z'),
        );
        expect([list, reversed.status, reversed.body.message]).toEqual([
          list,
          400,
          'since must be before until',
        ]);
      }
      // As `ssf-bridge dlq replay|purge --since --until` refuses it: not a quiet "purged 0".
      for (const action of ['replay', 'purge']) {
        const res = await write(`/dead-letters/${action}`, {
          since: '2026-02-01T00:00:00Z',
          until: '2026-01-01T00:00:00Z',
        });
        expect([action, res.status, res.body]).toEqual([
          action,
          400,
          { error: 'invalid_request', message: 'since must be before until' },
        ]);
      }
    });

    it('takes only whole, non-negative offsets as the cursor of lists held in memory', async () => {
      const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const all = (await admin('/instances')).body.items;
      expect(all.length).toBeGreaterThan(1);
      expect((await admin(`/instances?cursor=${cursor(1)}`)).body.items).toEqual(all.slice(1));
      for (const offset of [-1, 0.5, -0.5, 1e300]) {
        for (const list of ['/instances', '/keys', '/destinations']) {
          const res = await admin(`${list}?cursor=${cursor(offset)}`);
          expect([list, offset, res.status, res.body.message]).toEqual([
            list,
            offset,
            400,
            'cursor is not valid for this list; start again without it',
          ]);
        }
      }
    });
  });

  describe('streams, keys, instances, destinations, devices', () => {
    it('lists streams, changes status and deletes as an audited operator action', async () => {
      const created = await call(b.url, '/ssf/streams', {
        token: RECEIVER_TOKEN,
        body: {
          delivery: { method: 'urn:ietf:rfc:8936' },
          events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
        },
      });
      expect(created.status).toBe(201);
      const streamId = created.body.stream_id as string;
      const list = await admin('/streams?status=enabled');
      expect(list.body.items.map((s: any) => s.stream_id)).toContain(streamId);
      const detail = await admin(`/streams/${streamId}`);
      expect(detail.body).toEqual(
        expect.objectContaining({ client_id: 'receiver', status: 'enabled', errors: [] }),
      );
      expect((await admin(`/streams/${streamId}/subjects`)).body).toEqual({ items: [], next_cursor: null });
      const paused = await write(`/streams/${streamId}/status`, { status: 'paused', reason: 'maintenance' });
      expect(paused.body).toEqual({ stream_id: streamId, status: 'paused', reason: 'maintenance' });
      expect((await write(`/streams/${streamId}/status`, { status: 'sleeping' })).status).toBe(400);
      expect((await write(`/streams/${streamId}`, undefined, 'DELETE')).status).toBe(204);
      expect((await admin(`/streams/${streamId}`)).status).toBe(404);
      const actions = (await admin('/audit?actor=operator')).body.items.map((a: any) => a.action);
      expect(actions).toEqual(expect.arrayContaining(['streams.status', 'streams.delete']));
    });

    it("shows a push stream's authorization_header as set, never its value", async () => {
      const created = await call(b.url, '/ssf/streams', {
        token: RECEIVER_TOKEN,
        body: {
          delivery: {
            method: 'urn:ietf:rfc:8935',
            endpoint_url: 'https://93.184.216.34/ssf/push',
            authorization_header: 'Bearer receiver-push-credential-77aa',
          },
          events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
        },
      });
      expect(created.status).toBe(201);
      const shown = await admin(`/streams/${created.body.stream_id}`);
      expect(shown.body.config.delivery).toEqual({
        method: 'urn:ietf:rfc:8935',
        endpoint_url: 'https://93.184.216.34/ssf/push',
        authorization_header: '[redacted]',
      });
      expect(JSON.stringify(shown.body)).not.toContain('receiver-push-credential-77aa');
    });

    it('lists keys with rotation state and rotates them', async () => {
      const before = await admin('/keys');
      expect(before.body.rotatable).toBe(true);
      expect(before.body.items[0].status).toBe('active');
      const rotated = await write('/keys/rotate');
      expect(rotated.status).toBe(200);
      // The new key is in the JWKS at once and signs after keys.activation_delay (10 minutes by
      // default); until then the old one signs, and it leaves the JWKS a grace period after that.
      expect(rotated.body.active.kid).toBe(before.body.items[0].kid);
      expect(rotated.body.added).toEqual({
        kid: expect.any(String),
        alg: 'RS256',
        activates_at: expect.any(String),
      });
      const after = await admin('/keys');
      expect(after.body.signing).toBe(before.body.items[0].kid);
      expect(after.body.next).toEqual({
        kid: rotated.body.added.kid,
        activates_at: rotated.body.added.activates_at,
      });
      expect(after.body.items[0]).toEqual(
        expect.objectContaining({
          kid: before.body.items[0].kid,
          status: 'active',
          retires_at: expect.any(String),
        }),
      );
      expect(after.body.items[1]).toEqual(
        expect.objectContaining({
          kid: rotated.body.added.kid,
          status: 'published',
          activates_at: rotated.body.added.activates_at,
        }),
      );
      expect((await admin('/keys?status=published')).body.items.length).toBe(1);
      expect((await admin('/audit?action=keys.rotate')).body.items[0].actor).toBe('operator');
    });

    it('shows instances with status and counters, destination health and the dashboard overview', async () => {
      const instances = await admin('/instances?kind=outbound');
      expect(instances.body.items).toEqual([
        expect.objectContaining({
          id: 'hook',
          connector: 'webhook',
          kind: 'outbound',
          state: 'ok',
          last_success_at: expect.any(String),
        }),
      ]);
      const counters = instances.body.items[0].counters;
      expect(counters).toEqual(
        expect.arrayContaining([
          {
            name: 'ssf_bridge_deliveries_total',
            labels: { outcome: 'delivered' },
            value: expect.any(Number),
          },
        ]),
      );
      // Inbound series are labelled instance_id, as every connector's metrics are.
      const api = (await admin('/instances?kind=inbound')).body.items.find((i: any) => i.id === 'api');
      expect(api.counters).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: 'ssf_bridge_events_received_total', value: expect.any(Number) }),
        ]),
      );
      expect(
        api.counters.find((c: any) => c.name === 'ssf_bridge_events_received_total').value,
      ).toBeGreaterThan(0);
      expect((await admin('/instances?limit=1')).body.next_cursor).toEqual(expect.any(String));
      const destinations = await admin('/destinations?window=1h');
      const hook = destinations.body.items.find((d: any) => d.destination_id === 'hook');
      expect(hook).toEqual(expect.objectContaining({ circuit: 'closed', backlog: 0 }));
      expect(hook.delivered).toBeGreaterThan(0);
      expect(hook.success_rate).toBeGreaterThan(0);
      const overview = await admin('/overview?window=1h');
      expect(overview.body.readiness).toEqual({ ready: true, reasons: [] });
      expect(overview.body.activity.buckets.length).toBeGreaterThanOrEqual(60);
      const totals = overview.body.activity.buckets.reduce((n: number, x: any) => n + x.accepted, 0);
      expect(totals).toBeGreaterThan(10);
      // The overview's readiness is /readyz's: its dependency probes count too.
      b.bridge.status.addProbe('test-dependency', () => Promise.reject(new Error('unreachable')));
      try {
        expect((await admin('/overview?window=1h')).body.readiness).toEqual({
          ready: false,
          reasons: [expect.stringContaining('test-dependency')],
        });
      } finally {
        b.bridge.status.addProbe('test-dependency', () => Promise.resolve());
      }
      expect((await admin('/overview?window=2y')).status).toBe(400);
      // Names every object has are no windows either.
      for (const name of ['__proto__', 'toString', 'constructor', 'hasOwnProperty']) {
        for (const path of ['/overview', '/destinations']) {
          const refused = await admin(`${path}?window=${name}`);
          expect([path, name, refused.status]).toEqual([path, name, 400]);
          expect(refused.body.message).toBe('window must be one of 1h, 6h, 24h, 7d');
        }
      }
    });

    it('answers device compliance from the latest device-compliance-change event', async () => {
      expect((await admin('/devices/laptop-7/compliance')).body).toEqual(
        expect.objectContaining({
          device: 'laptop-7',
          current: expect.objectContaining({
            status: 'not-compliant',
            instance: 'api',
            connector: 'events-api',
            from: 'event',
          }),
        }),
      );
      expect((await admin('/devices/unknown-device/compliance')).status).toBe(404);
    });

    it('pages the audit log', async () => {
      const first = await admin('/audit?limit=1');
      expect(first.body.items.length).toBe(1);
      const second = await admin(`/audit?limit=1&cursor=${first.body.next_cursor}`);
      expect(second.body.items[0].id).toBeLessThan(first.body.items[0].id);
    });
  });

  describe('credentials in what connectors said', () => {
    it('an instance error quoting a configured credential shows it neither in the admin API nor on /readyz', async () => {
      // A source that echoes the credential it was sent in its error, as some vendor APIs do.
      b.bridge.status.set(
        'api',
        'permanent_error',
        `the vendor answered 401: token ${INGEST_TOKEN} is revoked`,
      );
      try {
        const instances = await admin('/instances');
        const api = instances.body.items.find((i: any) => i.id === 'api');
        expect(api.last_error).toBe('the vendor answered 401: token [redacted] is revoked');
        expect(JSON.stringify(instances.body)).not.toContain(INGEST_TOKEN);
        const overview = await admin('/overview');
        expect(JSON.stringify(overview.body)).not.toContain(INGEST_TOKEN);
        // /readyz answers without authentication.
        const ready = await fetch(`${b.url}/readyz`);
        const text = await ready.text();
        expect(ready.status).toBe(503);
        expect(text).toContain('token [redacted] is revoked');
        expect(text).not.toContain(INGEST_TOKEN);
      } finally {
        b.bridge.status.set('api', 'ok');
      }
    });
  });
});
