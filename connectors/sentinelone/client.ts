/**
 * SentinelOne Management API through the core HTTP client: `GET /web/api/v2.1/threats` with
 * `Authorization: ApiToken <token>` (not Bearer), sorted by updatedAt ascending and paged with
 * `pagination.nextCursor` (null on the last page).
 */
import {
  PermanentError,
  Secret,
  z,
  type HttpClient,
  type HttpClientFactory,
} from '../../core/plugin-api/index.ts';
import { describeIssues } from '../_shared/edr-mapping.ts';
import type { SentinelOneConfig } from './config.ts';

const THREATS = '/web/api/v2.1/threats';

const pageSchema = z.looseObject({
  data: z.array(z.unknown()),
  pagination: z.looseObject({ nextCursor: z.string().nullish() }).nullish(),
});

export interface ThreatPage {
  threats: unknown[];
  cursor?: string;
}

export class SentinelOneClient {
  readonly #api: HttpClient;
  readonly #config: SentinelOneConfig;

  constructor(http: HttpClientFactory, config: SentinelOneConfig) {
    if (!config.console_url || !config.api_token) {
      throw new PermanentError('console_url and api_token are required to call the SentinelOne API');
    }
    this.#config = config;
    this.#api = http.create({
      baseURL: config.console_url,
      timeoutMs: config.request_timeout,
      auth: {
        type: 'header',
        name: 'Authorization',
        value: new Secret(`ApiToken ${config.api_token.reveal()}`),
      },
    });
  }

  #scope(): Record<string, string> {
    const c = this.#config;
    return {
      ...(c.site_ids?.length ? { siteIds: c.site_ids.join(',') } : {}),
      ...(c.account_ids?.length ? { accountIds: c.account_ids.join(',') } : {}),
    };
  }

  /** One page of threats updated at or after `since`, oldest first. */
  async threats(since: Date, cursor: string | undefined, signal: AbortSignal): Promise<ThreatPage> {
    const res = await this.#api.get(THREATS, {
      params: {
        updatedAt__gte: since.toISOString(),
        sortBy: 'updatedAt',
        sortOrder: 'asc',
        limit: this.#config.page_size,
        ...this.#scope(),
        ...(cursor ? { cursor } : {}),
      },
      signal,
    });
    const parsed = pageSchema.safeParse(res.data);
    if (!parsed.success) {
      throw new PermanentError(
        `GET ${THREATS} answered with an unexpected body: ${describeIssues(parsed.error)}`,
        {
          code: 'SSF_ERR_HTTP_BAD_BODY',
        },
      );
    }
    const next = parsed.data.pagination?.nextCursor;
    return { threats: parsed.data.data, ...(next ? { cursor: next } : {}) };
  }

  /** A cheap authenticated call, for `check()`. */
  async probe(signal: AbortSignal): Promise<void> {
    await this.#api.get(THREATS, { params: { limit: 1, ...this.#scope() }, signal });
  }
}
