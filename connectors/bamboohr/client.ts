import { PermanentError, Secret, z, type InboundContext } from '../../core/plugin-api/index.ts';
import type { BambooHrConfig } from './config.ts';
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
  return config.api_base_url ?? `https://api.bamboohr.com/api/gateway.php/${config.company_domain}/v1`;
}

/** The BambooHR API: the API key is the Basic user name, with any password. */
export function createBambooHrClient(ctx: InboundContext<unknown>, config: BambooHrConfig): BambooHrClient {
  const http = ctx.http.create({
    baseURL: apiBase(config),
    timeoutMs: config.request_timeout,
    headers: { accept: 'application/json' },
    auth: { type: 'basic', username: config.api_key.reveal(), password: new Secret('x') },
  });
  const fields = employeeFields(config).join(',');
  return {
    async getEmployee(id, signal) {
      try {
        const res = await http.get(`/employees/${encodeURIComponent(id)}`, {
          params: { fields },
          responseType: 'json',
          ...(signal ? { signal } : {}),
        });
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
      const res = await http.get('/employees/changed', {
        params: { since },
        responseType: 'json',
        ...(signal ? { signal } : {}),
      });
      try {
        return parseChanged(res.data);
      } catch (err) {
        throw new PermanentError((err as Error).message, { code: 'SSF_ERR_BAMBOOHR_RESPONSE' });
      }
    },
    async ping(signal) {
      await http.get('/meta/fields', { responseType: 'json', ...(signal ? { signal } : {}) });
    },
  };
}
