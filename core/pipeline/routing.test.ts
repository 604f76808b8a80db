import { describe, expect, it } from 'vitest';
import { routeReferenceProblems, routesConfigSchema, type RoutesConfigInput } from './config.ts';
import { Router, globToRegExp } from './routing.ts';

const REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const RISK = 'https://schemas.openid.net/secevent/caep/event-type/risk-level-change';
const SHORT: Record<string, string> = { 'caep.session-revoked': REVOKED, 'caep.risk-level-change': RISK };
const resolve = (t: string) => SHORT[t] ?? (t.startsWith('https://') ? t : undefined);

const router = (routes: RoutesConfigInput) => new Router(routesConfigSchema.parse(routes), resolve);
const event = (
  over: Partial<{ instanceId: string; type: string; email: string; severity: 'low' | 'high' }> = {},
) => ({
  instanceId: over.instanceId ?? 'workday',
  type: over.type ?? REVOKED,
  subject: { format: 'email', email: over.email ?? 'alice@example.com' },
  severity: over.severity,
});

describe('routing', () => {
  it('rule: a severity outside low–critical passes no min_severity filter', () => {
    const r = router([{ min_severity: 'low', to: ['okta'] }]);
    expect(r.targets(event({ severity: 'low' })).destinations.size).toBe(1);
    for (const severity of ['HIGH', 'urgent', 'toString'])
      expect(r.targets({ ...event(), severity: severity as 'high' }).destinations.size).toBe(0);
  });

  it('rule: `from` limits a route to the listed inbound instances', () => {
    const r = router([{ from: ['workday'], to: ['okta'] }]);
    expect([...r.targets(event()).destinations]).toEqual(['okta']);
    expect([...r.targets(event({ instanceId: 'crowdstrike' })).destinations]).toEqual([]);
  });

  it('rule: event_types match by URI whether written as a short name or a URI', () => {
    const r = router([{ event_types: ['caep.risk-level-change', REVOKED], to: ['okta'] }]);
    expect(r.targets(event({ type: RISK })).destinations.size).toBe(1);
    expect(r.targets(event({ type: REVOKED })).destinations.size).toBe(1);
    expect(r.targets(event({ type: 'https://other' })).destinations.size).toBe(0);
  });

  it('rule: subject globs match any identifier of the subject, case-insensitively', () => {
    const r = router([{ subjects: ['*@example.com'], to: ['okta'] }]);
    expect(r.targets(event({ email: 'Bob@EXAMPLE.com' })).destinations.size).toBe(1);
    expect(r.targets(event({ email: 'bob@example.com.evil.org' })).destinations.size).toBe(0);
    const complex = {
      ...event(),
      subject: { format: 'complex', user: { format: 'email', email: 'c@example.com' } },
    };
    expect(r.targets(complex).destinations.size).toBe(1);
  });

  it('rule: min_severity passes that level and above; events without a severity do not pass', () => {
    const r = router([{ min_severity: 'high', to: ['okta'] }]);
    expect(r.targets(event({ severity: 'high' })).destinations.size).toBe(1);
    expect(r.targets(event({ severity: 'low' })).destinations.size).toBe(0);
    expect(r.targets(event()).destinations.size).toBe(0);
  });

  it('rule: an event goes to the union of every matching route', () => {
    const r = router([
      { id: 'all', to: ['log'] },
      { id: 'hr', from: ['workday'], to: ['okta', 'log'], streams: ['s1'] },
      { id: 'streams', subjects: ['*@example.com'], streams: true },
    ]);
    expect(r.matching(event())).toEqual(['all', 'hr', 'streams']);
    const t = r.targets(event());
    expect([...t.destinations].sort()).toEqual(['log', 'okta']);
    expect(t.streams).toBe('all');
    expect(r.targets(event({ email: 'x@other.org' })).streams).toEqual(new Set(['s1']));
  });

  it('rule: an unknown event type in a route is a config error naming the route', () => {
    expect(() => router([{ id: 'bad', event_types: ['caep.nope'], to: ['okta'] }])).toThrow(
      /route bad: unknown event type caep.nope/,
    );
  });

  it('rule: a route must send somewhere, and route ids are unique', () => {
    expect(routesConfigSchema.safeParse([{ from: '*' }]).success).toBe(false);
    const dup = routesConfigSchema.safeParse([
      { id: 'a', to: ['x'] },
      { id: 'a', to: ['y'] },
    ]);
    expect(dup.error?.issues[0]?.path).toEqual([1, 'id']);
  });

  it('reports routes that name instances the config does not define', () => {
    const routes = routesConfigSchema.parse([{ from: ['workday', 'ghost'], to: ['okta', 'nowhere'] }]);
    expect(routeReferenceProblems(routes, { inbound: ['workday'], outbound: ['okta'] })).toEqual([
      { path: [0, 'from', 1], message: 'no inbound instance has id ghost' },
      { path: [0, 'to', 1], message: 'no outbound instance has id nowhere' },
    ]);
  });

  it('globs escape regular-expression characters', () => {
    expect(globToRegExp('a.b*').test('a.bc')).toBe(true);
    expect(globToRegExp('a.b*').test('axbc')).toBe(false);
    expect(globToRegExp('user?@x').test('user1@x')).toBe(true);
  });
});
