import {
  PermanentError,
  RetryableError,
  registerSecretValue,
  z,
  type HttpClient,
  type HttpResponse,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import type { WorkdayConfig } from './config.ts';
import { parseFault, parseGetWorkers, type GetWorkersPage } from './mapping.ts';
import { zonedDate } from '../_shared/hr-leaver.ts';

/** A transaction-log window of Get_Workers: manual updates, or effective-dated changes. */
export interface TransactionWindow {
  kind: 'updated' | 'effective';
  from: string;
  through: string;
}

export interface WorkdayClient {
  /** Runs the custom report and returns its rows (`Report_Entry`). */
  fetchReport(since: string | undefined, signal: AbortSignal): Promise<unknown[]>;
  /** One page of Get_Workers for a transaction-log window, as of `asOf`. */
  getWorkers(
    window: TransactionWindow,
    asOf: Date,
    page: number,
    signal: AbortSignal,
  ): Promise<GetWorkersPage>;
}

const tokenSchema = z.looseObject({
  access_token: z.string().min(1),
  expires_in: z.union([z.number(), z.string()]).optional(),
});

const reportSchema = z.looseObject({ Report_Entry: z.array(z.unknown()).optional() });

function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Workday's REST and SOAP endpoints of one tenant, reached through the core HTTP client. */
export function createWorkdayClient(ctx: InboundContext<unknown>, config: WorkdayConfig): WorkdayClient {
  const origin = config.base_url.replace(/\/+$/, '');
  const tenant = encodeURIComponent(config.tenant);
  const auth = config.auth;
  const http: HttpClient = ctx.http.create({
    baseURL: origin,
    timeoutMs: config.request_timeout,
    maxResponseBytes: config.max_response_bytes,
    ...(auth.type === 'basic' && config.mode === 'raas'
      ? { auth: { type: 'basic' as const, username: auth.username, password: auth.password } }
      : {}),
  });
  let token: { value: string; refreshAt: number } | undefined;
  let pendingToken: Promise<string> | undefined;

  async function fetchToken(): Promise<string> {
    if (auth.type !== 'oauth_refresh_token') throw new Error('no OAuth configuration');
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: auth.refresh_token.reveal(),
      client_id: auth.client_id,
      client_secret: auth.client_secret.reveal(),
    });
    const url = auth.token_url ?? `${origin}/ccx/oauth2/${tenant}/token`;
    const res = await http.post(url, form, { responseType: 'json', signal: ctx.signal });
    const parsed = tokenSchema.safeParse(res.data);
    if (!parsed.success) {
      throw new PermanentError('the Workday token endpoint answered without an access_token', {
        code: 'SSF_ERR_WORKDAY_TOKEN',
        authFailure: true,
      });
    }
    const lifetimeS = Number(parsed.data.expires_in ?? 3600);
    const lifetime = Number.isFinite(lifetimeS) && lifetimeS > 0 ? lifetimeS * 1000 : 3_600_000;
    registerSecretValue(parsed.data.access_token, { lifetimeMs: lifetime });
    token = {
      value: parsed.data.access_token,
      refreshAt: Date.now() + lifetime - Math.min(60_000, lifetime / 10),
    };
    return token.value;
  }

  async function bearer(): Promise<Record<string, string>> {
    if (auth.type !== 'oauth_refresh_token') return {};
    if (!token || Date.now() >= token.refreshAt) {
      pendingToken ??= fetchToken().finally(() => (pendingToken = undefined));
      await pendingToken;
    }
    return { authorization: `Bearer ${token!.value}` };
  }

  /**
   * Sends a request with the current token, and once more with a fresh one after a 401. The
   * first attempt takes a 401 as an answer (`acceptStatuses`), so an access token Workday revoked
   * early is not reported to the instance's status as refused credentials: only a 401 to the
   * retry, with an access token just issued, is, as the HTTP client reports any refusal.
   */
  async function withToken<T>(
    send: (headers: Record<string, string>, accept: readonly number[]) => Promise<HttpResponse<T>>,
  ): Promise<HttpResponse<T>> {
    if (auth.type !== 'oauth_refresh_token') return send({}, []);
    const first = await bearer();
    const res = await send(first, [401]);
    if (res.status !== 401) return res;
    // Unless another request has renewed it meanwhile.
    if (first.authorization === `Bearer ${token?.value}`) token = undefined;
    return send(await bearer(), []);
  }

  return {
    async fetchReport(since, signal) {
      if (!config.raas) throw new Error('fetchReport needs the raas block');
      const { owner, report, prompts, since_prompt } = config.raas;
      const url = `/ccx/service/customreport2/${tenant}/${encodeURIComponent(owner)}/${encodeURIComponent(report)}`;
      const params: Record<string, string> = { ...prompts, format: 'json' };
      if (since_prompt && since) params[since_prompt] = since;
      const res = await withToken((headers, acceptStatuses) =>
        http.get(url, { params, headers, acceptStatuses, signal, responseType: 'json' }),
      ).catch((err: unknown) => {
        throw tooLarge(
          err,
          `the report ${owner}/${report}`,
          since_prompt
            ? 'raise max_response_bytes, or narrow what the report lists'
            : 'give the report a "changed since" prompt and name it in raas.since_prompt, so each run reads only what changed, or raise max_response_bytes',
        );
      });
      const parsed = reportSchema.safeParse(res.data);
      if (!parsed.success) {
        throw new PermanentError(
          `the report ${owner}/${report} did not answer {"Report_Entry": [...]}; check that it is web-service enabled and asked for in JSON`,
          { code: 'SSF_ERR_WORKDAY_REPORT' },
        );
      }
      return parsed.data.Report_Entry ?? [];
    },

    async getWorkers(window, asOf, page, signal) {
      const { version, page_size } = config.soap;
      const url = `/ccx/service/${tenant}/Human_Resources/${encodeURIComponent(version)}`;
      const envelope = getWorkersEnvelope(config, window, asOf, page, page_size);
      const res = await withToken((headers, acceptStatuses) =>
        http.post(url, envelope, {
          headers: { ...headers, 'content-type': 'text/xml; charset=utf-8' },
          responseType: 'text',
          acceptStatuses: [500, ...acceptStatuses],
          signal,
        }),
      ).catch((err: unknown) => {
        throw tooLarge(
          err,
          `a Get_Workers page of ${page_size} workers`,
          'lower soap.page_size, or raise max_response_bytes',
        );
      });
      const text = String(res.data ?? '');
      if (res.status === 500) throw faultError(text);
      try {
        return parseGetWorkers(text);
      } catch (err) {
        throw new PermanentError((err as Error).message, { code: 'SSF_ERR_WORKDAY_RESPONSE', cause: err });
      }
    },
  };
}

/**
 * An answer over max_response_bytes, said in the terms of the config that can help (`remedy`);
 * any other error as it is. Permanent: the same request gets the same answer.
 */
function tooLarge(err: unknown, what: string, remedy: string): unknown {
  if (!(err instanceof PermanentError) || err.code !== 'SSF_ERR_HTTP_TOO_LARGE') return err;
  const limit = Number(err.detail?.limitBytes);
  const size = Number.isFinite(limit)
    ? `${limit} bytes (${(limit / 1_048_576).toFixed(1)} MiB)`
    : 'the limit';
  return new PermanentError(`${what} is larger than max_response_bytes, ${size}: ${remedy}`, {
    code: 'SSF_ERR_HTTP_TOO_LARGE',
    cause: err,
    ...(err.detail ? { detail: err.detail } : {}),
  });
}

/**
 * The SOAP request for one page of one transaction-log window. The effective date is today where
 * the workers are (`timezone`): a UTC date is yesterday's there for hours east of Greenwich, and
 * a termination taking effect today would read as not yet in effect.
 */
export function getWorkersEnvelope(
  config: WorkdayConfig,
  window: TransactionWindow,
  asOf: Date,
  page: number,
  count: number,
): string {
  const auth = config.auth;
  const security =
    auth.type === 'basic'
      ? `<wsse:Security soapenv:mustUnderstand="1" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">` +
        `<wsse:UsernameToken><wsse:Username>${escapeXml(auth.username)}</wsse:Username>` +
        `<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">${escapeXml(auth.password.reveal())}</wsse:Password>` +
        `</wsse:UsernameToken></wsse:Security>`
      : '';
  const range =
    window.kind === 'updated'
      ? `<bsvc:Updated_From>${window.from}</bsvc:Updated_From><bsvc:Updated_Through>${window.through}</bsvc:Updated_Through>`
      : `<bsvc:Effective_From>${window.from}</bsvc:Effective_From><bsvc:Effective_Through>${window.through}</bsvc:Effective_Through>`;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bsvc="urn:com.workday/bsvc">` +
    `<soapenv:Header>${security}</soapenv:Header>` +
    `<soapenv:Body><bsvc:Get_Workers_Request bsvc:version="${escapeXml(config.soap.version)}">` +
    `<bsvc:Request_Criteria><bsvc:Transaction_Log_Criteria_Data><bsvc:Transaction_Date_Range_Data>${range}` +
    `</bsvc:Transaction_Date_Range_Data></bsvc:Transaction_Log_Criteria_Data></bsvc:Request_Criteria>` +
    `<bsvc:Response_Filter><bsvc:As_Of_Effective_Date>${zonedDate(asOf, config.timezone)}</bsvc:As_Of_Effective_Date>` +
    `<bsvc:As_Of_Entry_DateTime>${asOf.toISOString()}</bsvc:As_Of_Entry_DateTime>` +
    `<bsvc:Page>${page}</bsvc:Page><bsvc:Count>${count}</bsvc:Count></bsvc:Response_Filter>` +
    `<bsvc:Response_Group><bsvc:Include_Reference>true</bsvc:Include_Reference>` +
    `<bsvc:Include_Personal_Information>true</bsvc:Include_Personal_Information>` +
    `<bsvc:Include_Employment_Information>true</bsvc:Include_Employment_Information>` +
    `<bsvc:Include_User_Account>true</bsvc:Include_User_Account></bsvc:Response_Group>` +
    `</bsvc:Get_Workers_Request></soapenv:Body></soapenv:Envelope>`
  );
}

/**
 * Workday answers every SOAP fault with HTTP 500. A `Client` fault (validation, credentials)
 * will not go away by retrying, so it is permanent; anything else stays retryable.
 */
export function faultError(body: string): PermanentError | RetryableError {
  const fault = parseFault(body);
  if (!fault) {
    return new RetryableError('Workday answered 500 without a SOAP fault', {
      code: 'SSF_ERR_WORKDAY_SERVER',
    });
  }
  const text = `Workday answered Get_Workers with a fault (${fault.code}): ${fault.message}`;
  if (!/(^|[:.])Client/.test(fault.code)) return new RetryableError(text, { code: 'SSF_ERR_WORKDAY_SERVER' });
  const auth = /authenticat|password|credential|invalid user/i.test(`${fault.code} ${fault.message}`);
  return new PermanentError(text, {
    code: auth ? 'SSF_ERR_WORKDAY_AUTH' : 'SSF_ERR_WORKDAY_FAULT',
    authFailure: auth,
  });
}
