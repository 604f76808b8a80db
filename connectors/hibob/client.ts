import { PermanentError, z, type InboundContext } from '../../core/plugin-api/index.ts';
import type { HibobConfig } from './config.ts';
import { EMPLOYEE_FIELDS, employeeSchema, type HibobEmployee } from './mapping.ts';

export interface HibobClient {
  /** The employee's employment fields; undefined when Bob no longer knows the employee (404). */
  getEmployee(id: string, signal?: AbortSignal): Promise<HibobEmployee | undefined>;
}

const searchAnswer = z.looseObject({ employees: z.array(z.unknown()) });

/** The Bob Public API with a service user (Basic auth: service user id and token). */
export function createHibobClient(ctx: InboundContext<unknown>, config: HibobConfig): HibobClient {
  const { service_user_id: user, service_user_token: token } = config;
  if (user === undefined || token === undefined) {
    // The config schema refuses employee_lookup api without them; webhook_only never reads.
    throw new Error('the Bob Public API needs service_user_id and service_user_token');
  }
  const http = ctx.http.create({
    baseURL: config.api_base_url,
    timeoutMs: config.request_timeout,
    auth: { type: 'basic', username: user, password: token },
  });
  return {
    async getEmployee(id, signal) {
      let data: unknown;
      try {
        const res = await http.post(
          `/people/${encodeURIComponent(id)}`,
          { fields: EMPLOYEE_FIELDS },
          { responseType: 'json', ...(signal ? { signal } : {}) },
        );
        data = res.data;
      } catch (err) {
        if (err instanceof PermanentError && err.detail?.status === 404) return undefined;
        throw err;
      }
      const search = searchAnswer.safeParse(data);
      const body = search.success ? search.data.employees[0] : data;
      if (body === undefined) return undefined;
      const parsed = employeeSchema.safeParse(body);
      if (!parsed.success) {
        throw new PermanentError(
          `Bob answered POST /people/${id} with an unexpected body: ${z.prettifyError(parsed.error)}`,
          { code: 'SSF_ERR_HIBOB_RESPONSE' },
        );
      }
      return parsed.data;
    },
  };
}
