/**
 * A loopback stand-in for Microsoft Entra (token endpoint) and the Defender alert APIs, for this
 * connector's tests: Graph `security/alerts_v2` with `$filter=lastUpdateDateTime ge …`, `$top`
 * and `@odata.nextLink`, and the legacy `/api/alerts` with `$skip` paging.
 */
import type { MockServer, RecordedRequest } from '../../core/plugin-api/testing/index.ts';

export const TENANT = '11111111-2222-3333-4444-555555555555';
export const CLIENT_ID = 'defender-test-app-3c4d';
export const CLIENT_SECRET = 'defender-test-secret-8f7e6d';

export const FIXTURE_ALIASES = {
  'CORP\\dlee': 'dana.lee@example.com',
  'EMEA\\José.García': 'jose.garcia@example.com',
};

export interface TokenLedger {
  issued: Array<{ token: string; scope: string | null }>;
  revoked: Set<string>;
}

export function tokenEndpoint(server: MockServer): TokenLedger {
  const ledger: TokenLedger = { issued: [], revoked: new Set() };
  server.on('POST', `/${TENANT}/oauth2/v2.0/token`, (req) => {
    const form = new URLSearchParams(req.body);
    if (form.get('client_id') !== CLIENT_ID || form.get('client_secret') !== CLIENT_SECRET) {
      return {
        status: 401,
        body: {
          error: 'invalid_client',
          error_description: 'AADSTS7000215: Invalid client secret provided.',
          error_codes: [7000215],
        },
      };
    }
    const token = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.mock-${ledger.issued.length + 1}`;
    ledger.issued.push({ token, scope: form.get('scope') });
    return { body: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token } };
  });
  return ledger;
}

export function bearerRefused(req: RecordedRequest, ledger: TokenLedger) {
  const token = /^Bearer (\S+)$/.exec(req.headers['authorization'] ?? '')?.[1];
  if (token && ledger.issued.some((t) => t.token === token) && !ledger.revoked.has(token)) return undefined;
  return {
    status: 401,
    body: {
      error: { code: 'InvalidAuthenticationToken', message: 'Access token has expired or is not yet valid.' },
    },
  };
}

export function updatedMs(record: unknown): number {
  const r = record as Record<string, unknown> | null;
  const value = r?.['lastUpdateDateTime'] ?? r?.['lastUpdateTime'];
  return typeof value === 'string' ? Date.parse(value) : 0;
}

export interface AlertsApiOptions {
  ledger?: TokenLedger;
  /** Path before /security/alerts_v2, e.g. `/v1.0` when graph_url carries the version. */
  graphPrefix?: string;
  interject?: Array<{ status: number; headers?: Record<string, string>; body?: unknown }>;
  /**
   * Throttling as Graph does it (150 requests a minute per app and tenant): at most `requests`
   * alert requests in each minute of `now`, the rest answered 429 with Retry-After.
   */
  rateLimit?: { requests: number; now: () => number };
}

/** GET /security/alerts_v2 (Graph) and GET /api/alerts (Defender for Endpoint) over `alerts`. */
export function alertsApi(
  server: MockServer,
  alerts: unknown[],
  options: AlertsApiOptions = {},
): TokenLedger {
  const ledger = options.ledger ?? tokenEndpoint(server);
  const used = new Map<number, number>();
  const throttled = () => {
    if (!options.rateLimit) return undefined;
    const nowMs = options.rateLimit.now();
    const minute = Math.floor(nowMs / 60_000);
    const count = used.get(minute) ?? 0;
    if (count < options.rateLimit.requests) {
      used.set(minute, count + 1);
      return undefined;
    }
    const wait = Math.ceil(((minute + 1) * 60_000 - nowMs) / 1000);
    return {
      status: 429,
      headers: { 'retry-after': String(wait) },
      body: { error: { code: 'TooManyRequests', message: 'Too many requests' } },
    };
  };
  const answer = (
    req: RecordedRequest,
    field: 'lastUpdateDateTime' | 'lastUpdateTime',
    nextLinks: boolean,
  ) => {
    const refused = bearerRefused(req, ledger);
    if (refused) return refused;
    const interjected = options.interject?.shift() ?? throttled();
    if (interjected) return interjected;
    const filter = req.query['$filter'] ?? '';
    const since = new RegExp(`^${field} ge (\\S+)`).exec(filter)?.[1];
    const top = Number(req.query['$top'] ?? '100');
    if (filter !== '' && since === undefined) {
      return {
        status: 400,
        body: { error: { code: 'BadRequest', message: `Invalid filter clause: ${filter}` } },
      };
    }
    const from = since === undefined ? 0 : Date.parse(since);
    // Graph does not promise any order; newest first makes the watermark logic earn its keep.
    const matching = alerts.filter((a) => updatedMs(a) >= from).sort((a, b) => updatedMs(b) - updatedMs(a));
    const skip = Number(req.query['$skip'] ?? '0');
    const page = matching.slice(skip, skip + top);
    const more = skip + top < matching.length;
    const next = new URL(`${server.url}${req.path}`);
    for (const [k, v] of Object.entries(req.query)) next.searchParams.set(k, v);
    next.searchParams.set('$skip', String(skip + top));
    return {
      body: {
        '@odata.context': nextLinks
          ? 'https://graph.microsoft.com/v1.0/$metadata#security/alerts_v2'
          : 'https://api.security.microsoft.com/api/$metadata#Alerts',
        value: page,
        ...(more && nextLinks ? { '@odata.nextLink': next.toString() } : {}),
      },
    };
  };
  server.on('GET', `${options.graphPrefix ?? ''}/security/alerts_v2`, (req) =>
    answer(req, 'lastUpdateDateTime', true),
  );
  server.on('GET', '/api/alerts', (req) => answer(req, 'lastUpdateTime', false));
  return ledger;
}
