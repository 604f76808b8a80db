/**
 * A loopback stand-in for the CrowdStrike Falcon API, for this connector's tests: the OAuth
 * token endpoint, the Alerts API (FQL time filter, ascending sort, `after` paging) and Event
 * Streams discovery, datafeed and session refresh, answering as the real API does.
 */
import type { MockServer, RecordedRequest } from '../../core/plugin-api/testing/index.ts';

export const CLIENT_ID = 'falcon-test-client-1a2b';
export const CLIENT_SECRET = 'falcon-test-secret-9z8y7x';

/** The alias map the fixtures are written for. */
export const FIXTURE_ALIASES = {
  'CORP\\dlee': 'dana.lee@example.com',
  'corp\\akumar': 'arjun.kumar@example.com',
  'akumar@corp.example.com': 'arjun.kumar@example.com',
  'MÜLLER-GMBH\\jürgen.groß': 'juergen.gross@example.de',
};

export interface TokenLedger {
  issued: string[];
  /** Tokens the API no longer accepts (as if they expired early). */
  revoked: Set<string>;
}

/** Answers POST /oauth2/token for the test client, with a fresh token each time. */
export function tokenEndpoint(
  server: MockServer,
  ledger: TokenLedger = { issued: [], revoked: new Set() },
): TokenLedger {
  server.on('POST', '/oauth2/token', (req) => {
    const form = new URLSearchParams(req.body);
    if (form.get('client_id') !== CLIENT_ID || form.get('client_secret') !== CLIENT_SECRET) {
      return {
        status: 401,
        body: { errors: [{ code: 401, message: 'access denied, invalid client credentials' }] },
      };
    }
    const token = `falcon-access-${ledger.issued.length + 1}-${Math.random().toString(36).slice(2, 10)}`;
    ledger.issued.push(token);
    return { status: 201, body: { access_token: token, token_type: 'bearer', expires_in: 1799 } };
  });
  return ledger;
}

/** Whether a request carries a token the API accepts; the 401 answer otherwise. */
export function bearerRefused(req: RecordedRequest, ledger: TokenLedger) {
  const token = /^Bearer (\S+)$/.exec(req.headers['authorization'] ?? '')?.[1];
  if (token && ledger.issued.includes(token) && !ledger.revoked.has(token)) return undefined;
  return {
    status: 401,
    body: {
      meta: { query_time: 0 },
      errors: [{ code: 401, message: 'access denied, authorization failed' }],
    },
  };
}

/** When a record was last updated, as the Alerts API filters and sorts it. */
export function updatedMs(record: unknown): number {
  const r = record as Record<string, unknown> | null;
  if (r && typeof r['updated_timestamp'] === 'string') return Date.parse(r['updated_timestamp']);
  const meta = r?.['metadata'] as Record<string, unknown> | undefined;
  return typeof meta?.['eventCreationTime'] === 'number' ? meta['eventCreationTime'] : 0;
}

export interface AlertsApiOptions {
  ledger?: TokenLedger;
  /** Answer the next request(s) with this instead (e.g. a 429). */
  interject?: Array<{ status: number; headers?: Record<string, string>; body?: unknown }>;
}

/** POST /alerts/combined/alerts/v1 over `alerts`, as the Alerts API pages and filters them. */
export function alertsApi(server: MockServer, alerts: unknown[], options: AlertsApiOptions = {}): void {
  const ledger = options.ledger ?? tokenEndpoint(server);
  server.on('GET', '/alerts/queries/alerts/v2', (req) => {
    return bearerRefused(req, ledger) ?? { body: { meta: { query_time: 0.01 }, resources: [], errors: [] } };
  });
  server.on('POST', '/alerts/combined/alerts/v1', (req) => {
    const refused = bearerRefused(req, ledger);
    if (refused) return refused;
    const next = options.interject?.shift();
    if (next) return next;
    const body = req.json as { filter?: string; sort?: string; limit?: number; after?: string };
    const since = /updated_timestamp:>='([^']+)'/.exec(body.filter ?? '')?.[1];
    if (!since || body.sort !== 'updated_timestamp|asc') {
      return {
        status: 400,
        body: { errors: [{ code: 400, message: `unexpected filter or sort: ${JSON.stringify(body)}` }] },
      };
    }
    const matching = alerts
      .filter((a) => updatedMs(a) >= Date.parse(since))
      .sort((a, b) => updatedMs(a) - updatedMs(b));
    const offset = body.after ? Number(Buffer.from(body.after, 'base64url').toString('utf8')) : 0;
    const limit = body.limit ?? 100;
    const page = matching.slice(offset, offset + limit);
    const more = offset + limit < matching.length;
    return {
      body: {
        meta: {
          query_time: 0.02,
          pagination: {
            total: matching.length,
            limit,
            ...(more ? { after: Buffer.from(String(offset + limit)).toString('base64url') } : {}),
          },
          trace_id: 'b2c8c1d2-0000-4000-8000-000000000001',
        },
        resources: page,
        errors: [],
      },
    };
  });
}
