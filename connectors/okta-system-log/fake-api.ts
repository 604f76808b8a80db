/**
 * An HTTP-level fake of Okta's System Log API for tests: `GET /api/v1/logs` with `since`,
 * `limit` and an opaque `after` cursor, a `Link: <…>; rel="next"` header on every answer (the
 * polling cursor), SSWS authentication and a rate-limit window with Okta's headers and 429.
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
    if (state.remaining !== undefined) state.remaining -= 1;
    const limit = Number(req.query.limit ?? 100);
    const start = req.query.after !== undefined ? Number(req.query.after) : 0;
    const page = records.slice(start, start + limit);
    // Okta's cursor points after the last event returned and keeps working as new events arrive.
    const after = start + page.length;
    const host = req.headers.host ?? '127.0.0.1';
    return {
      status: 200,
      headers: {
        link: `<http://${host}/api/v1/logs?limit=${limit}&sortOrder=ASCENDING>; rel="self", <http://${host}/api/v1/logs?after=${after}&limit=${limit}&sortOrder=ASCENDING>; rel="next"`,
        ...(state.remaining !== undefined ? limitHeaders(state.remaining) : {}),
      },
      body: page,
    };
  });
  return state;
}
