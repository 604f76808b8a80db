import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RetryableError, type InboundConnector } from '../../core/plugin-api/index.ts';
import { SHARDS, shardOf, type ScimInboundRequest } from './connector.ts';
import { scimServiceConnector } from './index.ts';
import type { ScimSimulationState } from './mapping.ts';
import { applyPatch, matches, parseFilter, ScimError } from './scim.ts';
import {
  createTestContext,
  freePort,
  simulateFixtures,
  startBridge,
  type TestContext,
} from '../_shared/hr-test-support.ts';

describe('SCIM filters (RFC 7644 §3.4.2.2)', () => {
  const user = {
    id: 'a1',
    externalId: 'ExT-1',
    userName: 'BJensen@example.com',
    active: true,
    name: { givenName: 'Barbara', familyName: 'Jensen' },
    emails: [
      { value: 'bjensen@example.com', type: 'work', primary: true },
      { value: 'babs@home.example.net', type: 'home' },
    ],
    meta: { lastModified: '2026-05-01T00:00:00Z' },
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'Tour Operations' },
  };
  const cases: Array<[string, boolean]> = [
    ['userName eq "bjensen@example.com"', true],
    ['USERNAME Eq "bjensen@EXAMPLE.com"', true],
    ['externalId eq "ext-1"', false],
    ['externalId eq "ExT-1"', true],
    ['name.familyName sw "jen" and active eq true', true],
    ['emails[type eq "work" and value co "example.com"]', true],
    ['emails[type eq "other"]', false],
    ['emails.value ew ".net"', true],
    ['emails eq "babs@home.example.net"', true],
    ['not (active eq true) or title pr', false],
    ['title pr or (displayName pr)', false],
    ['meta.lastModified gt "2026-04-30T00:00:00Z"', true],
    ['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Tour Operations"', true],
    ['urn:ietf:params:scim:schemas:core:2.0:User:userName ne "x@example.com"', true],
    ['active eq false', false],
  ];
  for (const [filter, expected] of cases) {
    it(`${filter} → ${expected}`, () => expect(matches(parseFilter(filter), user)).toBe(expected));
  }

  it('RFC 7644 §3.4.2.2: dateTime attributes compare chronologically, not as text', () => {
    const modified = {
      id: 'a2',
      userName: 'late@example.com',
      meta: { created: '2026-04-30T22:00:00-02:00', lastModified: '2026-05-01T00:00:00.500Z' },
      'urn:example:hr:2.0:User': { terminationDate: '2026-06-30T17:00:00-07:00' },
    };
    const cases: Array<[string, boolean]> = [
      // As text, "…00.500Z" sorts before "…00Z".
      ['meta.lastModified gt "2026-05-01T00:00:00Z"', true],
      ['meta.lastModified le "2026-05-01T00:00:00Z"', false],
      ['meta.lastModified eq "2026-05-01T02:00:00.5+02:00"', true],
      ['meta.lastModified ne "2026-05-01T00:00:00.500Z"', false],
      ['meta.lastModified lt "2026-05-01T00:00:00.5001Z"', true],
      // -02:00: the same instant as 2026-05-01T00:00:00Z, which sorts after it as text.
      ['meta.created ge "2026-05-01T00:00:00Z"', true],
      ['meta.created lt "2026-05-01T00:00:00Z"', false],
      // Both sides are xsd:dateTime: 17:00 at -07:00 is midnight UTC.
      ['urn:example:hr:2.0:User:terminationDate lt "2026-07-01T00:00:00Z"', false],
      ['urn:example:hr:2.0:User:terminationDate ge "2026-07-01T00:00:00Z"', true],
      // Text operators still match the text.
      ['meta.lastModified sw "2026-05-01T00:00:00.5"', true],
    ];
    for (const [filter, expected] of cases)
      expect(matches(parseFilter(filter), modified), filter).toBe(expected);
    for (const bad of ['meta.lastModified gt "yesterday"', 'meta.created lt "2026-02-30T00:00:00Z"']) {
      expect(() => parseFilter(bad), bad).toThrow(/is not a dateTime/);
    }
  });

  it('refuses filters it cannot read as invalidFilter', () => {
    for (const bad of [
      'userName eq',
      'userName foo "x"',
      '(userName eq "x"',
      'userName eq "x" extra',
      'emails[type eq "work"',
    ]) {
      const err = (() => {
        try {
          parseFilter(bad);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, bad).toBeInstanceOf(ScimError);
      expect((err as ScimError).scimType, bad).toBe('invalidFilter');
    }
  });
});

describe('SCIM PatchOp', () => {
  const base = {
    id: 'a1',
    userName: 'u@example.com',
    active: true,
    emails: [{ value: 'u@example.com', type: 'work' }],
  };
  const patch = (...ops: unknown[]) => ({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: ops,
  });

  it('adds a work email through a filtered path when none matches, and removes one by filter', () => {
    const added = applyPatch(
      { ...base, emails: [] },
      patch({ op: 'add', path: 'emails[type eq "work"].value', value: 'n@example.com' }),
    );
    expect(added.emails).toEqual([{ type: 'work', value: 'n@example.com' }]);
    const removed = applyPatch(base, patch({ op: 'remove', path: 'emails[type eq "work"]' }));
    expect(removed.emails).toEqual([]);
  });

  it('appends to multi-valued attributes on add, and removes members named in the value (Entra)', () => {
    const more = applyPatch(
      base,
      patch({ op: 'add', path: 'emails', value: [{ value: 'x@example.com', type: 'home' }] }),
    );
    expect(more.emails).toHaveLength(2);
    const less = applyPatch(
      more,
      patch({ op: 'remove', path: 'emails', value: [{ value: 'x@example.com' }] }),
    );
    expect(less.emails).toEqual(base.emails);
  });

  it('matches attribute names without regard to case, and keeps the stored spelling', () => {
    const out = applyPatch(
      base,
      patch({ op: 'Replace', value: { Active: 'false', USERNAME: 'v@example.com' } }),
    );
    expect(out).toMatchObject({ active: false, userName: 'v@example.com' });
    expect(Object.keys(out)).not.toContain('Active');
  });

  it('RFC 7644 §3.5.2: path-less values keyed by the core User schema URN set attributes at the root', () => {
    const core = 'urn:ietf:params:scim:schemas:core:2.0:User';
    const enterprise = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
    const out = applyPatch(
      { ...base, name: { givenName: 'Ana' } },
      patch(
        { op: 'replace', value: { [core]: { active: false } } },
        { op: 'replace', value: { [core.toUpperCase()]: { displayName: 'Ana L' } } },
        {
          op: 'add',
          value: { [`${core}:name`]: { familyName: 'Lima' }, [enterprise]: { department: 'Ops' } },
        },
      ),
    );
    expect(out).toEqual({
      ...base,
      active: false,
      displayName: 'Ana L',
      name: { givenName: 'Ana', familyName: 'Lima' },
      [enterprise]: { department: 'Ops' },
    });
    // A path qualified by the core URN names the core attribute.
    expect(applyPatch(base, patch({ op: 'replace', path: `${core}:active`, value: false })).active).toBe(
      false,
    );
    expect(() => applyPatch(base, patch({ op: 'replace', value: { [core]: false } }))).toThrow(
      'must be an object',
    );
  });

  it('refuses changes to read-only attributes and unknown ops', () => {
    expect(() => applyPatch(base, patch({ op: 'replace', path: 'id', value: 'x' }))).toThrow(
      'id cannot be changed',
    );
    expect(() => applyPatch(base, patch({ op: 'move', path: 'active', value: false }))).toThrow(
      'add, remove or replace',
    );
    expect(() => applyPatch(base, patch({ op: 'remove' }))).toThrow('remove needs a path');
    expect(() =>
      applyPatch(base, patch({ op: 'replace', path: 'emails[type eq "work"', value: 'x' })),
    ).toThrow();
  });
});

// ---------------------------------------------------------------------------------------------
// A SCIM client against the service on loopback. The adapter forwards every method under
// /scim/v2/<instance-id>/ to handleWebhook with the sub-path in `req.path`: the routing this
// connector needs from the HTTP server.

const TOKEN = 'scim-bearer-token-for-tests';
let http: Server;
let base = '';
let connector: InboundConnector;
let tc: TestContext<ScimSimulationState>;

function mount(c: InboundConnector): void {
  connector = c;
}

beforeAll(async () => {
  http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const prefix = `/scim/v2/${tc.ctx.instanceId}`;
        if (!url.pathname.startsWith(prefix)) {
          res.writeHead(404).end();
          return;
        }
        const rawBody = Buffer.concat(chunks);
        const type = req.headers['content-type'] ?? '';
        const request: ScimInboundRequest = {
          method: req.method ?? 'GET',
          headers: req.headers as Record<string, string>,
          query: Object.fromEntries(url.searchParams),
          rawBody,
          body: rawBody.length > 0 && /json/.test(type) ? JSON.parse(rawBody.toString('utf8')) : undefined,
          remoteAddress: '127.0.0.1',
          // Decoded, as the bridge's server passes it.
          path: decodeURIComponent(url.pathname.slice(prefix.length)) || '/',
        };
        try {
          const answer = await connector.handleWebhook!(request);
          res.writeHead(answer.status, answer.headers);
          res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
        } catch (err) {
          const retry = err instanceof RetryableError;
          res.writeHead(retry ? 503 : 500, retry ? { 'retry-after': '5' } : {});
          res.end(
            JSON.stringify({
              error: retry ? 'unavailable' : 'internal_error',
              message: (err as Error).message,
            }),
          );
        }
      })();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}/scim/v2/hr-scim`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => http.close(() => resolve()));
});

async function fresh(
  checkpoints?: Map<string, unknown>,
  config: Record<string, unknown> = {},
): Promise<void> {
  tc = createTestContext<ScimSimulationState>({
    instanceId: 'hr-scim',
    ...(checkpoints ? { checkpoints } : {}),
  });
  const c = scimServiceConnector.create(
    tc.ctx,
    scimServiceConnector.configSchema.parse({ token: TOKEN, ...config }),
  );
  await c.start(tc.ctx.signal);
  mount(c);
}

beforeEach(async () => {
  await fresh();
});

async function scim(method: string, path: string, body?: unknown, token = TOKEN) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
      accept: 'application/scim+json',
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, any>) : undefined,
  };
}

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

function newUser(userName: string, extra: Record<string, unknown> = {}) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName,
    externalId: `ext-${userName}`,
    name: { givenName: 'Barbara', familyName: 'Jensen' },
    emails: [{ value: userName, type: 'work', primary: true }],
    active: true,
    ...extra,
  };
}

describe('scim-service over HTTP', () => {
  it('answers discovery requests', async () => {
    const config = await scim('GET', '/ServiceProviderConfig');
    expect(config.status).toBe(200);
    expect(config.headers.get('content-type')).toContain('application/scim+json');
    expect(config.body).toMatchObject({
      patch: { supported: true },
      filter: { supported: true, maxResults: 200 },
    });
    expect((await scim('GET', '/ResourceTypes')).body?.Resources[0]).toMatchObject({
      id: 'User',
      endpoint: '/Users',
    });
    expect((await scim('GET', '/Schemas')).body?.totalResults).toBe(1);
  });

  it('refuses a missing or wrong token with 401 and an RFC 7644 error body', async () => {
    const missing = await scim('GET', '/Users', undefined, '');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect(missing.body).toEqual({
      schemas: [ERROR],
      status: '401',
      detail: 'send the token as "Authorization: Bearer <token>"',
    });
    expect((await scim('GET', '/Users', undefined, 'nope')).body).toMatchObject({
      schemas: [ERROR],
      status: '401',
    });
  });

  it('creates, finds, pages and refuses duplicate users', async () => {
    const created = await scim('POST', '/Users', newUser('bjensen@example.com'));
    expect(created.status).toBe(201);
    const id = created.body?.id as string;
    expect(created.headers.get('location')).toBe(`${base}/Users/${id}`);
    expect(created.body?.meta).toMatchObject({
      resourceType: 'User',
      version: 'W/"1"',
      location: `${base}/Users/${id}`,
    });

    const dup = await scim('POST', '/Users', newUser('BJENSEN@example.com'));
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ schemas: [ERROR], status: '409', scimType: 'uniqueness' });

    for (const n of [1, 2, 3]) await scim('POST', '/Users', newUser(`user${n}@example.com`));
    const found = await scim(
      'GET',
      `/Users?filter=${encodeURIComponent('userName eq "bjensen@example.com"')}`,
    );
    expect(found.body).toMatchObject({ totalResults: 1, Resources: [{ id }] });
    const page = await scim('GET', '/Users?startIndex=2&count=2');
    expect(page.body).toMatchObject({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
      totalResults: 4,
      startIndex: 2,
      itemsPerPage: 2,
    });
    const search = await scim('POST', '/Users/.search', {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      filter: 'externalId eq "ext-user2@example.com"',
    });
    expect(search.body?.Resources.map((u: { userName: string }) => u.userName)).toEqual([
      'user2@example.com',
    ]);
    const bad = await scim('GET', `/Users?filter=${encodeURIComponent('userName sw')}`);
    expect(bad.body).toMatchObject({ status: '400', scimType: 'invalidFilter' });
    expect(tc.events()).toEqual([]);
  });

  it('turns each PatchOp variant that deactivates a user into one account-disabled and one session-revoked', async () => {
    const variants = [
      [{ op: 'replace', path: 'active', value: false }],
      [{ op: 'replace', value: { active: false } }],
      [{ op: 'Replace', path: 'active', value: 'False' }],
    ];
    for (const [i, ops] of variants.entries()) {
      const id = (await scim('POST', '/Users', newUser(`leaver${i}@example.com`))).body?.id as string;
      const res = await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: ops });
      expect(res.status, JSON.stringify(ops)).toBe(200);
      expect(res.body?.active).toBe(false);
      // The IdP sends it again: already inactive, nothing new.
      await scim('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: ops });
    }
    const events = tc.events();
    expect(events.map((e) => e.type)).toEqual(
      variants.flatMap(() => ['risc.account-disabled', 'caep.session-revoked']),
    );
    expect(events[0]).toMatchObject({
      subject: {
        format: 'aliases',
        identifiers: [
          { format: 'email', email: 'leaver0@example.com' },
          { format: 'iss_sub', iss: 'urn:ssf-bridge:scim', sub: 'ext-leaver0@example.com' },
        ],
      },
    });
    expect(events[1]?.claims).toEqual({ initiating_entity: 'admin', reason_admin: { en: 'HR termination' } });
    expect(events[0]?.sourceRecordId).toBe(events[1]?.sourceRecordId);
  });

  it('RFC 7644 §3.5.2: a path-less replace keyed by the core User schema URN deactivates the user, with the leaver events', async () => {
    const id = (await scim('POST', '/Users', newUser('urn@example.com'))).body?.id as string;
    const res = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'replace', value: { 'urn:ietf:params:scim:schemas:core:2.0:User': { active: false } } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body?.active).toBe(false);
    expect(Object.keys(res.body ?? {}).filter((k) => k.startsWith('urn:'))).toEqual([]);
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
  });

  it('RFC 7644 §3.4.2.2: a meta.lastModified filter finds users changed after an instant, to the millisecond', async () => {
    tc.clock.set('2026-05-01T00:00:00.500Z');
    await scim('POST', '/Users', newUser('later@example.com'));
    tc.clock.set('2026-04-30T23:59:59.999Z');
    await scim('POST', '/Users', newUser('earlier@example.com'));
    for (const since of ['2026-05-01T00:00:00Z', '2026-05-01T02:00:00+02:00']) {
      const found = await scim(
        'GET',
        `/Users?filter=${encodeURIComponent(`meta.lastModified gt "${since}"`)}`,
      );
      expect(
        found.body?.Resources.map((u: { userName: string }) => u.userName),
        since,
      ).toEqual(['later@example.com']);
    }
    const bad = await scim('GET', `/Users?filter=${encodeURIComponent('meta.lastModified gt "May 1"')}`);
    expect(bad.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'invalidFilter' });
  });

  it('reactivates, renames and deletes, with the matching events', async () => {
    const id = (await scim('POST', '/Users', newUser('ana@example.com', { active: false }))).body
      ?.id as string;
    await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'active', value: true }],
    });
    const put = await scim('PUT', `/Users/${id}`, newUser('ana.lima@example.com'));
    expect(put.status).toBe(200);
    expect(put.body?.meta.version).toBe('W/"3"');
    expect((await scim('DELETE', `/Users/${id}`)).status).toBe(204);
    expect((await scim('GET', `/Users/${id}`)).body).toMatchObject({ schemas: [ERROR], status: '404' });
    expect((await scim('DELETE', `/Users/${id}`)).status).toBe(404);
    expect(
      tc.events().map((e) => [e.type, e.subject.format === 'email' ? e.subject.email : undefined, e.claims]),
    ).toEqual([
      ['risc.account-enabled', undefined, {}],
      ['risc.identifier-changed', 'ana@example.com', { 'new-value': 'ana.lima@example.com' }],
      ['risc.account-purged', undefined, {}],
    ]);
  });

  it('RFC 7644 §3.5.2: adding a primary email demotes the old one, and the change is reported', async () => {
    const id = (await scim('POST', '/Users', newUser('ana@example.com'))).body?.id as string;
    const res = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        {
          op: 'add',
          path: 'emails',
          value: [{ value: 'ana.lima@example.com', type: 'work', primary: true }],
        },
      ],
    });
    expect(res.body?.emails).toEqual([
      { value: 'ana@example.com', type: 'work', primary: false },
      { value: 'ana.lima@example.com', type: 'work', primary: true },
    ]);
    expect(
      tc.events().map((e) => [e.type, e.subject.format === 'email' ? e.subject.email : undefined, e.claims]),
    ).toEqual([['risc.identifier-changed', 'ana@example.com', { 'new-value': 'ana.lima@example.com' }]]);
  });

  it('refuses removing active (it would read as reactivated) with 400 mutability, and sends nothing', async () => {
    const id = (await scim('POST', '/Users', newUser('leo@example.com', { active: false }))).body
      ?.id as string;
    const res = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'remove', path: 'active' }],
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ schemas: [ERROR], status: '400', scimType: 'mutability' });
    expect((await scim('GET', `/Users/${id}`)).body?.active).toBe(false);
    expect(tc.events().filter((e) => e.type === 'risc.account-enabled')).toEqual([]);
  });

  it('RISC identifier-changed: an address changed back and then again is a new change each time', async () => {
    const id = (await scim('POST', '/Users', newUser('ana@example.com'))).body?.id as string;
    const setEmail = (value: string) =>
      scim('PATCH', `/Users/${id}`, {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'emails[type eq "work"].value', value }],
      });
    await setEmail('ana.lima@example.com');
    await setEmail('ana@example.com');
    await setEmail('ana.lima@example.com');
    const changes = tc.events().filter((e) => e.type === 'risc.identifier-changed');
    expect(changes.map((e) => [e.subject.format === 'email' ? e.subject.email : '', e.claims])).toEqual([
      ['ana@example.com', { 'new-value': 'ana.lima@example.com' }],
      ['ana.lima@example.com', { 'new-value': 'ana@example.com' }],
      ['ana@example.com', { 'new-value': 'ana.lima@example.com' }],
    ]);
    // The pipeline drops an event whose (source record, type) it has seen within its dedupe
    // window: the third change must not look like a retry of the first.
    expect(new Set(changes.map((e) => e.sourceRecordId)).size).toBe(3);
  });

  it('RFC 7644 §3.12: a % in an id is a 404 for an unknown user; deep bodies and filters are invalidSyntax/invalidFilter, never a 500', async () => {
    for (const method of ['GET', 'DELETE']) {
      expect((await scim(method, '/Users/100%25')).body, method).toMatchObject({
        schemas: [ERROR],
        status: '404',
      });
    }
    const deep = await fetch(`${base}/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/scim+json' },
      body: `{"userName":"deep@example.com","x":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
    });
    expect(deep.status).toBe(400);
    expect(await deep.json()).toMatchObject({
      scimType: 'invalidSyntax',
      detail: 'the body nests more than 32 levels deep',
    });
    const filter = `${'('.repeat(3000)}userName eq "a"${')'.repeat(3000)}`;
    const searched = await scim('GET', `/Users?filter=${encodeURIComponent(filter)}`);
    expect(searched.body).toMatchObject({ status: '400', scimType: 'invalidFilter' });
    expect(searched.body?.detail).toContain('more than 32 nested groups');
    const shallow = await scim('GET', `/Users?filter=${encodeURIComponent('((userName eq "a"))')}`);
    expect(shallow.status).toBe(200);
  });

  it('answers SCIM errors for what it does not provide or refuses', async () => {
    expect((await scim('GET', '/Groups')).body).toMatchObject({ schemas: [ERROR], status: '404' });
    expect((await scim('PATCH', '/Users', { schemas: [PATCH], Operations: [] })).status).toBe(405);
    const id = (await scim('POST', '/Users', newUser('cy@example.com'))).body?.id as string;
    const ro = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'id', value: 'x' }],
    });
    expect(ro.body).toMatchObject({ status: '400', scimType: 'mutability' });
    const notPatch = await scim('PATCH', `/Users/${id}`, { schemas: ['urn:example:other'], Operations: [] });
    expect(notPatch.body).toMatchObject({ status: '400', scimType: 'invalidSyntax' });
    const noName = await scim('POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'] });
    expect(noName.body).toMatchObject({
      status: '400',
      scimType: 'invalidValue',
      detail: 'userName is required',
    });
  });

  it('answers 503 and keeps the user unchanged when the outbox is full; the retry sends the same events', async () => {
    const id = (await scim('POST', '/Users', newUser('dee@example.com'))).body?.id as string;
    tc.failNextEmit();
    const full = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toBe('5');
    expect((await scim('GET', `/Users/${id}`)).body?.active).toBe(true);
    expect(tc.events()).toEqual([]);
    const retry = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    expect(retry.status).toBe(200);
    expect(tc.events().map((e) => e.sourceRecordId)).toEqual([`${id}:deactivated:2`, `${id}:deactivated:2`]);
    expect(tc.directSets).toBe(0);
  });

  it('keeps users in sharded checkpoints, committed with the events, and finds them after a restart', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 12; i += 1)
      ids.push((await scim('POST', '/Users', newUser(`p${i}@example.com`))).body?.id as string);
    const names = [...tc.checkpoints.keys()];
    expect(names.every((n) => /^users-\d{2}$/.test(n))).toBe(true);
    expect(new Set(ids.map(shardOf)).size).toBeGreaterThan(1);
    expect(ids.map(shardOf).every((s) => Number(s.slice(6)) < SHARDS)).toBe(true);

    await connector.stop(100);
    await fresh(tc.checkpoints);
    const list = await scim('GET', '/Users?count=50');
    expect(list.body?.totalResults).toBe(12);
    const res = await scim('PATCH', `/Users/${ids[3]}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    expect(res.status).toBe(200);
    expect(tc.events()).toHaveLength(2);
  });

  it('RFC 7643 §4.1.1: a password (writeOnly, returned never) is accepted but never kept nor returned', async () => {
    const secret = 'Sup3r-Secret!';
    const created = await scim('POST', '/Users', newUser('pw@example.com', { password: secret }));
    expect(created.status).toBe(201);
    const id = created.body?.id as string;
    const replaced = await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'replace', path: 'password', value: 'N3w-Secret!' },
        { op: 'replace', value: { PassWord: 'Other-Secret!', displayName: 'PW' } },
      ],
    });
    expect(replaced.status).toBe(200);
    const put = await scim('PUT', `/Users/${id}`, newUser('pw@example.com', { Password: 'Put-Secret!' }));
    expect(put.status).toBe(200);
    const answers = [
      created,
      replaced,
      put,
      await scim('GET', `/Users/${id}`),
      await scim('GET', '/Users'),
      await scim('GET', `/Users?filter=${encodeURIComponent('password sw "N3w"')}`),
    ];
    for (const answer of answers) expect(JSON.stringify(answer.body)).not.toMatch(/secret/i);
    expect(answers[5]?.body?.totalResults).toBe(0);
    expect(JSON.stringify([...tc.checkpoints.values()])).not.toMatch(/secret/i);
    const schema = (await scim('GET', '/Schemas')).body?.Resources[0].attributes.find(
      (a: { name: string }) => a.name === 'password',
    );
    expect(schema).toMatchObject({ mutability: 'writeOnly', returned: 'never' });
  });

  it('drops a password an earlier release kept in its checkpoint', async () => {
    const id = (await scim('POST', '/Users', newUser('kept@example.com'))).body?.id as string;
    const shard = shardOf(id);
    const stored = tc.checkpoints.get(shard) as Record<string, Record<string, unknown>>;
    tc.checkpoints.set(shard, { ...stored, [id]: { ...stored[id], password: 'Old-Secret!' } });
    await connector.stop(100);
    await fresh(tc.checkpoints);
    expect(JSON.stringify((await scim('GET', `/Users/${id}`)).body)).not.toMatch(/secret/i);
    await scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'displayName', value: 'Kept' }],
    });
    expect(JSON.stringify(tc.checkpoints.get(shard))).not.toMatch(/secret/i);
  });

  it('sends only the email as subject when configured for Okta, and uses the public URL in locations', async () => {
    await fresh(undefined, {
      subject_format: 'email',
      public_url: 'https://bridge.example.com/scim/v2/hr-scim',
    });
    const created = await scim('POST', '/Users', newUser('eve@example.com'));
    expect(created.headers.get('location')).toBe(
      `https://bridge.example.com/scim/v2/hr-scim/Users/${created.body?.id}`,
    );
    await scim('PATCH', `/Users/${created.body?.id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    expect(tc.events()[0]?.subject).toEqual({ format: 'email', email: 'eve@example.com' });
  });
});

describe('scim-service config', () => {
  it('refuses a token or previous_token shorter than 16 characters, as the SSF transmitter does', () => {
    const parse = (config: Record<string, unknown>) => scimServiceConnector.configSchema.safeParse(config);
    for (const config of [
      { token: 'x' },
      { token: 'fifteen-chars-x' },
      { token: TOKEN, previous_token: 'short' },
    ]) {
      const result = parse(config);
      expect(result.success, JSON.stringify(config)).toBe(false);
      expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
        ['previous_token' in config ? 'previous_token' : 'token', 'must be at least 16 characters'],
      ]);
    }
    expect(parse({ token: 'sixteen-chars-xx', previous_token: 'sixteen-chars-yy' }).success).toBe(true);
  });
});

describe('scim-service through ssf-bridge simulate (golden)', () => {
  it('prints every fixture event, notes the ignored ones, and stops at a malformed one', async () => {
    const { run, expected, ignored, rejected } = await simulateFixtures(
      'scim-service',
      { token: TOKEN },
      new URL('./fixtures/', import.meta.url),
    );
    expect(run.events.map(({ txn: _txn, ...rest }) => rest)).toEqual(expected);
    for (const reason of ignored) expect(run.stderr).toContain(reason);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(rejected[0]);
  }, 60_000);
});

describe('scim-service in a running bridge', () => {
  it('RFC 7644 §3: the bridge routes /scim/v2/<id> to it; an instance of another connector gets 404 there', async () => {
    const data = mkdtempSync(join(tmpdir(), 'scim-e2e-'));
    const bridge = await startBridge(
      {
        inbound: [
          {
            id: 'hr-scim',
            connector: 'scim-service',
            config: {
              token: TOKEN,
              public_url: 'https://bridge.example.com/scim/v2/hr-scim',
              subject_format: 'email',
            },
          },
          { id: 'api', connector: 'events-api', config: { token: 'events-api-token-0123' } },
        ],
        outbound: [{ id: 'okta', connector: 'log', config: { audience: 'https://acme.okta.example' } }],
        routes: [{ from: ['hr-scim', 'api'], to: ['okta'] }],
      },
      data,
    );
    try {
      const scim = (path: string, method: string, body?: unknown, token = TOKEN) =>
        fetch(`http://127.0.0.1:${bridge.port}/scim/v2/${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      const created = await scim('hr-scim/Users', 'POST', {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName: 'leaver@example.com',
        active: true,
        emails: [{ value: 'leaver@example.com', type: 'work', primary: true }],
      });
      expect(created.status).toBe(201);
      const id = ((await created.json()) as { id: string }).id;
      const deactivated = await scim(`hr-scim/Users/${id}`, 'PATCH', {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', path: 'active', value: false }],
      });
      expect(deactivated.status).toBe(200);
      const sets = await bridge.waitFor(1);
      expect(sets.map((s) => s.subject)).toContainEqual({ format: 'email', email: 'leaver@example.com' });

      // The events API is a webhook connector too, but no SCIM service: a DELETE there is no event.
      const stray = await scim('api/Users/x', 'DELETE', undefined, 'events-api-token-0123');
      expect(stray.status).toBe(404);
      expect(await stray.json()).toEqual({ error: 'not_found', message: 'no SCIM service instance "api"' });
    } finally {
      await bridge.stop();
      rmSync(data, { recursive: true, force: true });
    }
  });

  it('RFC 7644 §3.12: what the server refuses itself (a body that is not JSON, one too large, a full outbox) is a SCIM error, and a client without the token gets 401 first', async () => {
    const data = mkdtempSync(join(tmpdir(), 'scim-e2e-'));
    const bridge = await startBridge(
      {
        inbound: [{ id: 'hr-scim', connector: 'scim-service', config: { token: TOKEN } }],
        // Nothing listens there: what is queued for it stays queued.
        outbound: [
          {
            id: 'stuck',
            connector: 'webhook',
            config: { url: `http://127.0.0.1:${await freePort()}/sink`, signing_secret: 'k'.repeat(32) },
          },
        ],
        routes: [{ from: ['hr-scim'], to: ['stuck'] }],
        // Full once one deactivation's two events wait in it.
        delivery: { destinations: { stuck: { queue_size: 1 } } },
      },
      data,
    );
    try {
      const send = (path: string, method: string, body: string, token?: string) =>
        fetch(`http://127.0.0.1:${bridge.port}/scim/v2/${path}`, {
          method,
          headers: {
            ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
            'content-type': 'application/scim+json',
          },
          ...(body === '' ? {} : { body }),
        });
      const scimError = async (res: Response) => {
        expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
        return (await res.json()) as Record<string, unknown>;
      };
      const truncated = '{"userName": "x@example.com",';

      const bad = await send('hr-scim/Users', 'POST', truncated, TOKEN);
      expect(bad.status).toBe(400);
      expect(await scimError(bad)).toEqual({
        schemas: [ERROR],
        status: '400',
        scimType: 'invalidSyntax',
        detail: 'the body is not JSON',
      });

      // RFC 7644 §2: the client authenticates first; its body is not judged without the token.
      for (const token of [undefined, 'not-the-token-at-all']) {
        const refused = await send('hr-scim/Users', 'POST', truncated, token);
        expect(refused.status, String(token)).toBe(401);
        expect(refused.headers.get('www-authenticate')).toContain('Bearer');
        expect(await scimError(refused)).toMatchObject({ schemas: [ERROR], status: '401' });
      }

      const big = await send('hr-scim/Users', 'POST', JSON.stringify({ pad: 'x'.repeat(1_048_576) }), TOKEN);
      expect(big.status).toBe(413);
      expect(await scimError(big)).toEqual({
        schemas: [ERROR],
        status: '413',
        detail: 'request body exceeds the limit of 1048576 bytes',
      });

      const deactivate = async (userName: string) => {
        const created = await send('hr-scim/Users', 'POST', JSON.stringify(newUser(userName)), TOKEN);
        expect(created.status).toBe(201);
        const id = ((await created.json()) as { id: string }).id;
        const patched = await send(
          `hr-scim/Users/${id}`,
          'PATCH',
          JSON.stringify({ schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] }),
          TOKEN,
        );
        return { id, patched };
      };
      expect((await deactivate('first@example.com')).patched.status).toBe(200);
      const { id, patched: full } = await deactivate('second@example.com');
      expect(full.status).toBe(503);
      expect(full.headers.get('retry-after')).toBe('5');
      expect(await scimError(full)).toMatchObject({
        schemas: [ERROR],
        status: '503',
        detail: expect.stringMatching(/^the outbox is full for stuck/),
      });
      const after = await send(`hr-scim/Users/${id}`, 'GET', '', TOKEN);
      expect(((await after.json()) as { active: boolean }).active).toBe(true);
    } finally {
      await bridge.stop();
      rmSync(data, { recursive: true, force: true });
    }
  }, 60_000);
});
