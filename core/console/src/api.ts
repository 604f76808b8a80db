/**
 * The admin API client. The admin token lives in sessionStorage (gone when the tab closes) and
 * travels in the Authorization header only: there are no cookies, so another site cannot make
 * the browser act with it (no CSRF).
 */
const TOKEN_KEY = 'ssf-bridge.admin-token';

export interface Session {
  name: string;
  role: 'read' | 'write';
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, value);
}

export async function api<T = any>(
  path: string,
  options: { method?: string; body?: unknown } = {},
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`/admin${path}`, {
      method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
      headers: {
        authorization: `Bearer ${token() ?? ''}`,
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      credentials: 'omit',
      cache: 'no-store',
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  } catch {
    // fetch says only "Failed to fetch"; status 0 marks "no answer at all".
    throw new ApiError(0, 'The bridge did not answer (network error or the bridge is down).');
  }
  const body = await bodyOf(res);
  if (!res.ok) throw new ApiError(res.status, body?.message ?? `HTTP ${res.status}`);
  return body as T;
}

/**
 * The JSON the admin API answers with. Anything else (a proxy's HTML error page, a login portal)
 * did not come from the bridge: it is named as such rather than failing as a JSON SyntaxError.
 */
async function bodyOf(res: Response): Promise<any> {
  const text = await res.text();
  if (!text) return undefined;
  const type = res.headers.get('content-type') ?? '';
  if (/^application\/([\w.+-]*\+)?json\b/i.test(type)) {
    try {
      return JSON.parse(text);
    } catch {
      /* falls through to the message below */
    }
  }
  throw new ApiError(
    res.status,
    `HTTP ${res.status}: the answer was not the admin API's JSON (${type.split(';')[0] || 'no content type'}); ` +
      'a proxy or gateway in front of the bridge may have answered instead.',
  );
}

export function query(params: Record<string, string | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') search.set(k, v);
  const text = search.toString();
  return text ? `?${text}` : '';
}
