/**
 * The Microsoft APIs this connector reads, through the core HTTP client with OAuth 2.0 client
 * credentials from Microsoft Entra: Graph `security/alerts_v2` (paged by `@odata.nextLink`,
 * 150 requests/min per app and tenant) and the legacy Defender for Endpoint `/api/alerts`
 * (paged by `@odata.nextLink` or `$skip`, 100 calls/min). 429 answers carry `Retry-After`,
 * which the core client turns into the error's `retryAfterMs`.
 */
import {
  PermanentError,
  sameOriginLink,
  z,
  type HttpClient,
  type HttpClientFactory,
} from '../../core/plugin-api/index.ts';
import { describeIssues } from '../_shared/edr-mapping.ts';
import type { DefenderConfig } from './config.ts';
import { entraAuth, entraCredentialIssues } from '../_shared/entra-auth.ts';

const pageSchema = z.looseObject({
  value: z.array(z.unknown()),
  '@odata.nextLink': z.string().nullish(),
});

export interface AlertPage {
  alerts: unknown[];
  next?: string;
}

function odataTime(date: Date): string {
  return date.toISOString();
}

export class DefenderClient {
  readonly #api: HttpClient;
  readonly #config: DefenderConfig;
  readonly #mode: 'graph' | 'mde';
  /** Origin of the configured API: the only host a next link may lead to. */
  readonly #origin: string;

  constructor(http: HttpClientFactory, config: DefenderConfig) {
    const { tenant_id: tenant, client_id: clientId } = config;
    if (config.mode === 'webhook' || !tenant || !clientId || entraCredentialIssues(config).length > 0) {
      throw new PermanentError(
        'tenant_id, client_id and one credential (client_secret, client_certificate or federated_token_file) are required to call the Defender APIs',
      );
    }
    this.#config = config;
    this.#mode = config.mode;
    const graph = config.mode === 'graph';
    this.#origin = new URL(graph ? config.graph_url : config.mde_url).origin;
    this.#api = http.create({
      baseURL: graph ? config.graph_url : config.mde_url,
      timeoutMs: config.request_timeout,
      headers: graph ? { prefer: 'include-unknown-enum-members' } : {},
      auth: entraAuth({
        tokenUrl: `${config.login_url}/${encodeURIComponent(tenant)}/oauth2/v2.0/token`,
        clientId,
        scope: graph ? `${new URL(config.graph_url).origin}/.default` : config.mde_scope,
        credentials: config,
      }),
    });
  }

  #path(): string {
    return this.#mode === 'graph' ? '/security/alerts_v2' : '/api/alerts';
  }

  #filter(since: Date): string {
    const field = this.#mode === 'graph' ? 'lastUpdateDateTime' : 'lastUpdateTime';
    const time = `${field} ge ${odataTime(since)}`;
    return this.#config.filter ? `${time} and (${this.#config.filter})` : time;
  }

  /** One page of alerts updated at or after `since`; `next` is the URL of the following page. */
  async alerts(since: Date, next: string | undefined, signal: AbortSignal): Promise<AlertPage> {
    const top = this.#config.page_size;
    const params =
      next === undefined
        ? {
            $filter: this.#filter(since),
            $top: top,
            ...(this.#mode === 'mde' ? { $expand: 'evidence' } : {}),
          }
        : undefined;
    if (next !== undefined) this.#checkNextLink(next);
    const res = await this.#api.get(next ?? this.#path(), { ...(params ? { params } : {}), signal });
    const parsed = pageSchema.safeParse(res.data);
    if (!parsed.success) {
      throw new PermanentError(
        `GET ${this.#path()} answered with an unexpected body: ${describeIssues(parsed.error)}`,
        {
          code: 'SSF_ERR_HTTP_BAD_BODY',
        },
      );
    }
    const link = parsed.data['@odata.nextLink'];
    if (link) return { alerts: parsed.data.value, next: link };
    // The Defender for Endpoint API may page by $skip without a nextLink: a full page asks for more.
    if (this.#mode === 'mde' && parsed.data.value.length === top) {
      return { alerts: parsed.data.value, next: this.#skipLink(since, next, top) };
    }
    return { alerts: parsed.data.value };
  }

  /** A next link leads to the configured API only: the bearer token must never travel to another host. */
  #checkNextLink(link: string): void {
    sameOriginLink(link, `${this.#origin}/`, {
      code: 'SSF_ERR_DEFENDER_PAGING',
      message: (origin) =>
        `GET ${this.#path()} answered with an @odata.nextLink to another host (${origin ?? 'an unreadable URL'}); it is not followed, and the token is not sent there`,
    });
  }

  #skipLink(since: Date, current: string | undefined, top: number): string {
    const url = new URL(current ?? `${this.#config.mde_url}${this.#path()}`);
    if (current === undefined) {
      url.searchParams.set('$filter', this.#filter(since));
      url.searchParams.set('$top', String(top));
      url.searchParams.set('$expand', 'evidence');
    }
    const skip = Number(url.searchParams.get('$skip') ?? '0') + top;
    url.searchParams.set('$skip', String(skip));
    return url.toString();
  }

  /** A cheap authenticated call, for `check()`. */
  async probe(signal: AbortSignal): Promise<void> {
    await this.#api.get(this.#path(), { params: { $top: 1 }, signal });
  }
}
