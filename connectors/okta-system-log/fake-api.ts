/**
 * An HTTP-level fake of Okta's System Log API for tests: `GET /api/v1/logs` with `since`
 * (inclusive), `limit`, `filter` (`eventType eq "…"` or `eventType sw "…"`) and an opaque `after`
 * cursor, a `Link: <…>; rel="next"` header on every answer (the polling cursor, carrying the
 * query's limit and filter as Okta's does), SSWS authentication and a rate-limit window with
 * Okta's headers and 429.
 */
import type { MockServer } from '../../core/plugin-api/testing/index.ts';

export const FAKE_TOKEN = '00okta-fake-api-token-5d1c';

export interface FakeSystemLog {
  /** Appends events, as Okta does when things happen. */
  append(...records: unknown[]): void;
  /** Requests left in the current window; unlimited when undefined. */
  remaining: number | undefined;
  /** The window's reset, in epoch seconds. */
  resetAt: number;
}

export function systemLogApi(server: MockServer, initial: readonly unknown[] = []): FakeSystemLog {
  const records = [...initial];
  const state: FakeSystemLog = {
    append: (...more) => void records.push(...more),
    remaining: undefined,
    resetAt: Math.floor(Date.now() / 1000) + 60,
  };
  server.on('GET', '/api/v1/logs', (req) => {
    if (req.headers.authorization !== `SSWS ${FAKE_TOKEN}`)
      return { status: 401, body: { errorCode: 'E0000011', errorSummary: 'Invalid token provided' } };
    const limitHeaders = (left: number): Record<string, string> => ({
      'x-rate-limit-limit': '60',
      'x-rate-limit-remaining': String(left),
      'x-rate-limit-reset': String(state.resetAt),
    });
    if (state.remaining !== undefined && state.remaining <= 0) {
      return {
        status: 429,
        headers: limitHeaders(0),
        body: { errorCode: 'E0000047', errorSummary: 'API call exceeded rate limit' },
      };
    }
    const matches = eventTypeFilter(req.query.filter);
    if (matches === undefined)
      return { status: 400, body: { errorCode: 'E0000031', errorSummary: 'Invalid search criteria.' } };
    if (state.remaining !== undefined) state.remaining -= 1;
    const limit = Number(req.query.limit ?? 100);
    const since = req.query.since === undefined ? undefined : Date.parse(req.query.since);
    const wanted = (record: unknown): boolean => {
      const published = publishedOf(record);
      return matches(record) && (since === undefined || published === undefined || published >= since);
    };
    // Okta's cursor points after the last event returned and keeps working as new events arrive.
    let after = req.query.after !== undefined ? Number(req.query.after) : 0;
    const page: unknown[] = [];
    while (after < records.length && page.length < limit) {
      const record = records[after];
      after += 1;
      if (wanted(record)) page.push(record);
    }
    const host = req.headers.host ?? '127.0.0.1';
    const query = new URLSearchParams({ limit: String(limit), sortOrder: 'ASCENDING' });
    if (req.query.filter !== undefined) query.set('filter', req.query.filter);
    return {
      status: 200,
      headers: {
        link: `<http://${host}/api/v1/logs?${query}>; rel="self", <http://${host}/api/v1/logs?after=${after}&${query}>; rel="next"`,
        ...(state.remaining !== undefined ? limitHeaders(state.remaining) : {}),
      },
      body: page,
    };
  });
  return state;
}

function publishedOf(record: unknown): number | undefined {
  const published = (record as { published?: unknown } | null)?.published;
  return typeof published === 'string' ? Date.parse(published) : undefined;
}

/** The filters the fake understands; undefined for any other, which Okta would answer 400 to. */
function eventTypeFilter(filter: string | undefined): ((record: unknown) => boolean) | undefined {
  if (filter === undefined) return () => true;
  const match = /^eventType (eq|sw) "([^"]*)"$/.exec(filter);
  if (!match) return undefined;
  const [, operator, value = ''] = match;
  return (record) => {
    const type = (record as { eventType?: unknown } | null)?.eventType;
    return typeof type === 'string' && (operator === 'eq' ? type === value : type.startsWith(value));
  };
}

export interface FakeUsers {
  /** Sets what `GET /api/v1/users/{id}` answers for the user (as after a profile change). */
  put(user: { id: string; login: string; email?: string; status?: string }): void;
  /** Deletes the user: reads answer 404 E0000007. */
  remove(id: string): void;
  /** Reads left in the current window (each answer says how many); unlimited when undefined, 429 at 0. */
  remaining: number | undefined;
  /** The window's reset, in epoch seconds. */
  resetAt: number;
}

/** Okta's Users API, as far as reading one user by id (SSWS; 404 for a deleted user; 429). */
export function usersApi(server: MockServer): FakeUsers {
  const fake: FakeUsers = {
    put(user) {
      server.on('GET', `/api/v1/users/${user.id}`, (req) => {
        if (req.headers.authorization !== `SSWS ${FAKE_TOKEN}`)
          return { status: 401, body: { errorCode: 'E0000011', errorSummary: 'Invalid token provided' } };
        const limitHeaders = (left: number): Record<string, string> => ({
          'x-rate-limit-limit': '600',
          'x-rate-limit-remaining': String(left),
          'x-rate-limit-reset': String(fake.resetAt),
        });
        if (fake.remaining !== undefined && fake.remaining <= 0) {
          return {
            status: 429,
            headers: limitHeaders(0),
            body: {
              errorCode: 'E0000047',
              errorSummary: 'API call exceeded rate limit due to too many requests.',
            },
          };
        }
        if (fake.remaining !== undefined) fake.remaining -= 1;
        const host = req.headers.host ?? '127.0.0.1';
        return {
          status: 200,
          headers: fake.remaining !== undefined ? limitHeaders(fake.remaining) : {},
          body: {
            id: user.id,
            status: user.status ?? 'ACTIVE',
            created: '2024-03-02T16:20:11.000Z',
            activated: '2024-03-02T16:20:12.000Z',
            statusChanged: '2024-03-02T16:20:12.000Z',
            lastLogin: '2026-01-15T16:58:03.000Z',
            lastUpdated: '2026-01-15T17:10:42.000Z',
            passwordChanged: '2025-11-20T09:12:00.000Z',
            type: { id: 'oty1ab2cd3ef4gh5ij6k' },
            profile: {
              firstName: 'Dana',
              lastName: 'Kim',
              mobilePhone: null,
              secondEmail: null,
              login: user.login,
              email: user.email ?? user.login,
            },
            credentials: { password: {}, provider: { type: 'OKTA', name: 'OKTA' } },
            _links: { self: { href: `http://${host}/api/v1/users/${user.id}` } },
          },
        };
      });
    },
    remove(id) {
      server.on('GET', `/api/v1/users/${id}`, () => ({
        status: 404,
        body: {
          errorCode: 'E0000007',
          errorSummary: `Not found: Resource not found: ${id} (User)`,
          errorLink: 'E0000007',
          errorId: 'oaeJk5zQ2mKyr9Lc1TbW7Qx8A',
          errorCauses: [],
        },
      }));
    },
    remaining: undefined,
    resetAt: Math.floor(Date.now() / 1000) + 60,
  };
  return fake;
}
