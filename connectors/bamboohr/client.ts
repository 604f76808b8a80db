import {
  PermanentError,
  Secret,
  z,
  type HttpResponse,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import type { BambooHrConfig } from './config.ts';
import { createBambooOAuth } from './oauth.ts';
import {
  employeeFields,
  employeeSchema,
  parseChanged,
  type BambooEmployee,
  type EmployeeChange,
} from './mapping.ts';

export interface BambooHrClient {
  /** GET /employees/{id}; undefined when the employee no longer exists (404). */
  getEmployee(id: string, signal?: AbortSignal): Promise<BambooEmployee | undefined>;
  /** GET /employees/changed?since=… */
  changedSince(
    since: string,
    signal?: AbortSignal,
  ): Promise<{ latest?: string | undefined; changes: EmployeeChange[] }>;
  /** A cheap authenticated call: GET /meta/fields. */
  ping(signal?: AbortSignal): Promise<void>;
}

export function apiBase(config: BambooHrConfig): string {
  if (config.api_base_url) return config.api_base_url;
  return config.oauth
    ? `https://${config.company_domain}.bamboohr.com/api/v1`
    : `https://api.bamboohr.com/api/gateway.php/${config.company_domain}/v1`;
}

/**
 * The BambooHR API: with an API key as the Basic user name (any password), or with OAuth
 * access tokens as Bearer (refreshed when due, and once more after a 401).
 */
export function createBambooHrClient(ctx: InboundContext<unknown>, config: BambooHrConfig): BambooHrClient {
  const apiKey = config.api_key;
  const oauth = config.oauth ? createBambooOAuth(ctx, config, config.oauth) : undefined;
  const http = ctx.http.create({
    baseURL: apiBase(config),
    timeoutMs: config.request_timeout,
    headers: { accept: 'application/json' },
    ...(apiKey
      ? { auth: { type: 'basic' as const, username: apiKey.reveal(), password: new Secret('x') } }
      : {}),
  });
  const fields = employeeFields(config).join(',');

  /**
   * Sends with the current access token, and once more with a fresh one after a 401. The first
   * attempt takes a 401 as an answer (`acceptStatuses`), so an access token BambooHR revoked
   * early is not reported to the instance's status as refused credentials: only a 401 to the
   * retry, with an access token just issued, is, as the HTTP client reports any refusal.
   */
  async function send<T>(
    label: string,
    request: (headers: Record<string, string>, accept: readonly number[]) => Promise<HttpResponse<T>>,
  ): Promise<HttpResponse<T>> {
    if (!oauth) return request({}, []);
    const first = await oauth.headers();
    const res = await request(first, [401]);
    if (res.status !== 401) return res;
    oauth.invalidate(first);
    try {
      return await request(await oauth.headers(), []);
    } catch (err) {
      if (!(err instanceof PermanentError) || err.detail?.status !== 401) throw err;
      throw new PermanentError(
        `BambooHR refused a newly issued OAuth access token for ${label} (401): the app's authorization may have been revoked, or it lacks the scope; authorize the app again and set oauth.refresh_token (${err.message})`,
        { code: 'SSF_ERR_BAMBOOHR_OAUTH', authFailure: true, cause: err, detail: err.detail },
      );
    }
  }

  return {
    async getEmployee(id, signal) {
      try {
        const res = await send(`GET /employees/${id}`, (headers, acceptStatuses) =>
          http.get(`/employees/${encodeURIComponent(id)}`, {
            params: { fields },
            headers,
            acceptStatuses,
            responseType: 'json',
            ...(signal ? { signal } : {}),
          }),
        );
        const parsed = employeeSchema.safeParse(res.data);
        if (!parsed.success) {
          throw new PermanentError(
            `BambooHR answered GET /employees/${id} with an unexpected body: ${z.prettifyError(parsed.error)}`,
            { code: 'SSF_ERR_BAMBOOHR_RESPONSE' },
          );
        }
        return parsed.data;
      } catch (err) {
        if (err instanceof PermanentError && err.detail?.status === 404) return undefined;
        throw err;
      }
    },
    async changedSince(since, signal) {
      const res = await send('GET /employees/changed', (headers, acceptStatuses) =>
        http.get('/employees/changed', {
          params: { since },
          headers,
          acceptStatuses,
          responseType: 'json',
          ...(signal ? { signal } : {}),
        }),
      );
      try {
        return parseChanged(res.data);
      } catch (err) {
        throw new PermanentError((err as Error).message, { code: 'SSF_ERR_BAMBOOHR_RESPONSE' });
      }
    },
    async ping(signal) {
      await send('GET /meta/fields', (headers, acceptStatuses) =>
        http.get('/meta/fields', {
          headers,
          acceptStatuses,
          responseType: 'json',
          ...(signal ? { signal } : {}),
        }),
      );
    },
  };
}
