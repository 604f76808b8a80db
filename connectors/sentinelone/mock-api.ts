/**
 * A loopback stand-in for the SentinelOne Management API, for this connector's tests:
 * `GET /web/api/v2.1/threats` with `ApiToken` auth, `updatedAt__gte`, ascending sort by
 * updatedAt and `pagination.nextCursor` (null on the last page).
 */
import type { MockServer } from '../../core/plugin-api/testing/index.ts';

export const API_TOKEN = 'eyJraWQiOiJ1cy1lYXN0LTEtcHJvZC0wIiwiYWxnIjoiRVMyNTYifQ.s1-test-token';

export const FIXTURE_ALIASES = { 'CORP\\dlee': 'dana.lee@example.com' };

export function updatedMs(record: unknown): number {
  const r = record as { threatInfo?: { updatedAt?: unknown }; updatedAt?: unknown } | null;
  const value = r?.threatInfo?.updatedAt ?? r?.updatedAt;
  return typeof value === 'string' ? Date.parse(value) : 0;
}

export interface ThreatsApiOptions {
  token?: { value: string };
  interject?: Array<{ status: number; headers?: Record<string, string>; body?: unknown }>;
}

export function threatsApi(server: MockServer, threats: unknown[], options: ThreatsApiOptions = {}): void {
  const token = options.token ?? { value: API_TOKEN };
  server.on('GET', '/web/api/v2.1/threats', (req) => {
    if (req.headers['authorization'] !== `ApiToken ${token.value}`) {
      return {
        status: 401,
        body: { errors: [{ code: 4010010, detail: null, title: 'Authentication Failed' }] },
      };
    }
    const interjected = options.interject?.shift();
    if (interjected) return interjected;
    const since = req.query['updatedAt__gte'];
    const from = since === undefined ? 0 : Date.parse(since);
    if (Number.isNaN(from)) {
      return {
        status: 400,
        body: {
          errors: [
            {
              code: 4000010,
              title: 'Validation Error',
              detail: { updatedAt__gte: ['Not a valid datetime.'] },
            },
          ],
        },
      };
    }
    const siteIds = req.query['siteIds']?.split(',');
    const matching = threats
      .filter((t) => updatedMs(t) >= from)
      .filter(
        (t) =>
          !siteIds ||
          siteIds.includes(
            (t as { agentRealtimeInfo?: { siteId?: string } }).agentRealtimeInfo?.siteId ?? '',
          ),
      )
      .sort((a, b) => updatedMs(a) - updatedMs(b));
    const limit = Number(req.query['limit'] ?? '10');
    const offset = req.query['cursor']
      ? Number(Buffer.from(req.query['cursor'], 'base64').toString('utf8').split(':')[1])
      : 0;
    const more = offset + limit < matching.length;
    return {
      body: {
        data: matching.slice(offset, offset + limit),
        pagination: {
          nextCursor: more ? Buffer.from(`id:${offset + limit}`).toString('base64') : null,
          totalItems: matching.length,
        },
      },
    };
  });
}
