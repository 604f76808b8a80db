import { describe, expect, it } from 'vitest';
import { normaliseSubject, subjectKey } from '../ssf/subjects.ts';
import { RoutingIndex, subjectStorageKey, type IndexedStream } from './routing.ts';

const REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const CHANGED = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';

function stream(streamId: string, overrides: Partial<IndexedStream> = {}): IndexedStream {
  return {
    streamId,
    clientId: 'c',
    audience: 'c',
    status: 'enabled',
    eventsDelivered: new Set([REVOKED]),
    method: 'poll',
    rev: '1',
    ...overrides,
  };
}

const NONE = { defaultSubjects: 'NONE' as const, pausedHoldLimit: 10 };
const ALL = { defaultSubjects: 'ALL' as const, pausedHoldLimit: 10 };
const email = (address: string) => ({ format: 'email', email: address });
const tenant = (id: string) => ({ format: 'opaque', id });

describe('RoutingIndex', () => {
  it('routes by event type (events_delivered) and skips disabled streams', () => {
    const index = new RoutingIndex();
    index.setStream(stream('a'));
    index.setStream(stream('b', { eventsDelivered: new Set([CHANGED]) }));
    index.setStream(stream('c', { status: 'disabled' }));
    expect(index.route(REVOKED, email('u@example.com'), ALL)).toEqual(['stream:a']);
    expect(index.route(CHANGED, email('u@example.com'), ALL)).toEqual(['stream:b']);
    index.setStream(stream('c'));
    expect(index.route(REVOKED, email('u@example.com'), ALL).sort()).toEqual(['stream:a', 'stream:c']);
  });

  it('default_subjects NONE: only added subjects; simple subjects match when identical after normalising', () => {
    const index = new RoutingIndex();
    index.setStream(stream('a'));
    index.putSubject('a', email('User@Example.COM'), true);
    expect(index.route(REVOKED, email('User@example.com'), NONE)).toEqual(['stream:a']);
    expect(index.route(REVOKED, email('user@example.com'), NONE)).toEqual([]);
    expect(index.route(REVOKED, { format: 'phone_number', phone_number: '+12065550100' }, NONE)).toEqual([]);
  });

  it('default_subjects ALL: every stream unless a removed subject matches; an added one wins', () => {
    const index = new RoutingIndex();
    index.setStream(stream('a'));
    index.setStream(stream('b'));
    index.putSubject('a', email('gone@example.com'), false);
    expect(index.route(REVOKED, email('gone@example.com'), ALL)).toEqual(['stream:b']);
    expect(index.route(REVOKED, email('other@example.com'), ALL).sort()).toEqual(['stream:a', 'stream:b']);
    index.putSubject('a', email('gone@example.com'), true);
    expect(index.route(REVOKED, email('gone@example.com'), ALL).sort()).toEqual(['stream:a', 'stream:b']);
  });

  it('SSF-40 / Appendix B: complex subjects match when every shared member is identical (absent = wildcard)', () => {
    const index = new RoutingIndex();
    index.setStream(stream('tenant'));
    index.setStream(stream('user-g1'));
    index.setStream(stream('simple'));
    index.putSubject('tenant', { format: 'complex', tenant: tenant('T') }, true);
    index.putSubject(
      'user-g1',
      { format: 'complex', user: email('u@example.com'), group: tenant('G1') },
      true,
    );
    index.putSubject('simple', email('u@example.com'), true);
    const route = (subject: Record<string, unknown>) => index.route(REVOKED, subject as never, NONE).sort();
    // Added {tenant:T} matches an event {tenant:T, user:U}.
    expect(route({ format: 'complex', tenant: tenant('T'), user: email('u@example.com') })).toEqual([
      'stream:tenant',
      'stream:user-g1',
    ]);
    // Added {user:U, group:G1} does not match an event with group G2 ({tenant:T} shares no member with it).
    expect(route({ format: 'complex', user: email('u@example.com'), group: tenant('G2') })).toEqual([
      'stream:tenant',
    ]);
    // Another tenant does not match {tenant:T}.
    expect(route({ format: 'complex', tenant: tenant('X'), group: tenant('G1') })).toEqual([
      'stream:user-g1',
    ]);
    // Complex subjects with no member name in common match (both sides are wildcards).
    expect(route({ format: 'complex', device: tenant('D') })).toEqual(['stream:tenant', 'stream:user-g1']);
    // A simple subject never matches a complex one.
    expect(route(email('u@example.com'))).toEqual(['stream:simple']);
  });

  it('aliases subjects match through any of their identifiers', () => {
    const index = new RoutingIndex();
    index.setStream(stream('a'));
    index.putSubject('a', { format: 'aliases', identifiers: [email('a@example.com'), tenant('id-1')] }, true);
    expect(index.route(REVOKED, tenant('id-1'), NONE)).toEqual(['stream:a']);
    expect(index.route(REVOKED, { format: 'aliases', identifiers: [email('a@example.com')] }, NONE)).toEqual([
      'stream:a',
    ]);
    expect(index.route(REVOKED, tenant('id-2'), NONE)).toEqual([]);
  });

  it('deleting subjects and streams removes them from every index', () => {
    const index = new RoutingIndex();
    index.setStream(stream('a'));
    index.putSubject('a', { format: 'complex', tenant: tenant('T') }, true);
    index.putSubject('a', email('x@example.com'), true);
    expect(index.subjectCount('a')).toBe(2);
    index.clearSubjects('a');
    expect(index.route(REVOKED, { format: 'complex', device: tenant('D') }, NONE)).toEqual([]);
    expect(index.route(REVOKED, email('x@example.com'), NONE)).toEqual([]);
    index.putSubject('a', email('x@example.com'), true);
    index.removeStream('a');
    expect(index.route(REVOKED, email('x@example.com'), ALL)).toEqual([]);
    expect(index.size).toBe(0);
  });

  it('SSF-39: a paused stream gets events until its hold is full, then drops them', () => {
    const index = new RoutingIndex();
    index.setStream(stream('p', { status: 'paused' }));
    index.setStream(stream('e'));
    const dropped: string[] = [];
    const options = { ...ALL, pausedHoldLimit: 2, onHoldFull: (id: string) => dropped.push(id) };
    expect(index.route(REVOKED, email('a@example.com'), options).sort()).toEqual(['stream:e', 'stream:p']);
    expect(index.route(REVOKED, email('a@example.com'), options).sort()).toEqual(['stream:e', 'stream:p']);
    expect(index.route(REVOKED, email('a@example.com'), options)).toEqual(['stream:e']);
    expect(dropped).toEqual(['p']);
    expect(index.held('p')).toBe(2);
    index.setHeld('p', 0);
    expect(index.route(REVOKED, email('a@example.com'), options).sort()).toEqual(['stream:e', 'stream:p']);
    index.setStream(stream('p'));
    expect(index.held('p')).toBe(0);
  });
});

describe('subject storage keys', () => {
  it("equal core/ssf's subjectKey for every spelling, so pipeline keys and stored subjects agree", () => {
    for (const subject of [
      { format: 'email', email: 'A.User@EXAMPLE.com' },
      { format: 'phone_number', phone_number: '+12065550100' },
      { format: 'uri', uri: 'HTTPS://Example.COM/Users/1' },
      {
        format: 'complex',
        tenant: { format: 'opaque', id: 't' },
        user: { format: 'email', email: 'u@x.example' },
      },
      {
        format: 'aliases',
        identifiers: [
          { format: 'opaque', id: 'b' },
          { format: 'opaque', id: 'a' },
        ],
      },
    ]) {
      const canonical = normaliseSubject(subject as never);
      expect(subjectStorageKey(canonical)).toBe(subjectKey(subject as never));
    }
  });
});
