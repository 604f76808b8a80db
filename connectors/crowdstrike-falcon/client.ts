/**
 * The CrowdStrike Falcon APIs this connector calls, through the core HTTP client: OAuth 2.0
 * client credentials at `/oauth2/token` (tokens last 30 min and are refreshed by the client), the
 * Alerts API v2, and Event Streams discovery, datafeed and session refresh. 429 answers carry
 * `X-Ratelimit-Retryafter` as an absolute epoch time; the core client turns it into the
 * error's `retryAfterMs`.
 */
import type { Readable } from 'node:stream';
import {
  PermanentError,
  registerSecretValue,
  z,
  type HttpClient,
  type HttpClientFactory,
} from '../../core/plugin-api/index.ts';
import { describeIssues } from '../_shared/edr-mapping.ts';
import type { FalconConfig } from './config.ts';

const alertsPageSchema = z.looseObject({
  resources: z.array(z.unknown()).nullish(),
  meta: z
    .looseObject({
      pagination: z.looseObject({ after: z.string().nullish() }).nullish(),
    })
    .nullish(),
});

const feedSchema = z.looseObject({
  dataFeedURL: z.url(),
  sessionToken: z.looseObject({ token: z.string().min(1), expiration: z.string().nullish() }),
  refreshActiveSessionURL: z.url(),
  refreshActiveSessionInterval: z.number().positive().max(86_400).default(1800),
});

const discoverySchema = z.looseObject({ resources: z.array(feedSchema).nullish() });

/** One partition of the Event Streams datafeed, as discovery describes it. */
export interface Feed {
  partition: string;
  url: string;
  token: string;
  refreshUrl: string;
  refreshIntervalMs: number;
}

export interface AlertsPage {
  alerts: unknown[];
  after?: string;
}

function unexpected(what: string, error: z.ZodError): PermanentError {
  return new PermanentError(`${what} answered with an unexpected body: ${describeIssues(error)}`, {
    code: 'SSF_ERR_HTTP_BAD_BODY',
  });
}

/** The partition number in `/datafeed/v1/<n>` or `/datafeed-actions/v1/<n>`. */
export function partitionOf(dataFeedUrl: string, refreshUrl: string): string {
  for (const candidate of [dataFeedUrl, refreshUrl]) {
    const match = /\/datafeed(?:-actions)?\/v\d+\/(\d+)(?:[/?]|$)/.exec(new URL(candidate).pathname);
    if (match) return match[1] as string;
  }
  throw new PermanentError(`cannot tell the partition of datafeed ${new URL(dataFeedUrl).pathname}`, {
    code: 'SSF_ERR_HTTP_BAD_BODY',
  });
}

/**
 * How long a datafeed session token stays a credential: until the `expiration` discovery gives
 * it, or, when discovery names none that can be read, for the session's refresh interval (the
 * 30 minutes a session lasts unless refreshed). The token is sent once, to open its feed; after
 * that it is scrubbed from logs for a while more and then forgotten, so rediscoveries over months
 * do not grow the list of values every log line is checked against.
 */
export function sessionTokenLifetimeMs(
  expiration: string | null | undefined,
  refreshIntervalS: number,
  nowMs: number = Date.now(),
): number {
  const expiresAt = expiration ? Date.parse(expiration) : Number.NaN;
  return Number.isFinite(expiresAt) ? Math.max(0, expiresAt - nowMs) : refreshIntervalS * 1000;
}

/**
 * The response size limit of the datafeed client. The core client counts every byte of a
 * streamed body against `maxResponseBytes` (10 MiB by default) and breaks the stream past it, but
 * a datafeed connection is meant to stay open for hours: its total is not bounded, only each
 * record is (JsonObjectSplitter's MAX_RECORD_CHARS). The core refuses Infinity; this is as large
 * as it takes.
 */
export const DATAFEED_MAX_BYTES = Number.MAX_SAFE_INTEGER;

export class FalconClient {
  readonly #api: HttpClient;
  /** For the datafeed only: no total size limit, and the session token instead of OAuth. */
  readonly #feed: HttpClient;
  readonly #config: FalconConfig;

  constructor(http: HttpClientFactory, config: FalconConfig) {
    this.#config = config;
    if (config.client_id === undefined || config.client_secret === undefined) {
      throw new PermanentError('client_id and client_secret are required to call the Falcon API');
    }
    this.#api = http.create({
      baseURL: config.base_url,
      timeoutMs: config.request_timeout,
      auth: {
        type: 'oauth2_client_credentials',
        tokenUrl: `${config.base_url}/oauth2/token`,
        clientId: config.client_id,
        clientSecret: config.client_secret,
        clientAuth: 'body',
        ...(config.member_cid ? { extraParams: { member_cid: config.member_cid } } : {}),
      },
    });
    // The deadline covers the wait for the headers; the body then lives until the feed ends.
    this.#feed = http.create({ timeoutMs: config.request_timeout, maxResponseBytes: DATAFEED_MAX_BYTES });
  }

  /** One page of alerts updated at or after `since`, oldest first. */
  async alerts(since: Date, after: string | undefined, signal: AbortSignal): Promise<AlertsPage> {
    const a = this.#config.alerts;
    const time = `updated_timestamp:>='${since.toISOString()}'`;
    const body = {
      filter: a.filter ? `${time}+(${a.filter})` : time,
      sort: 'updated_timestamp|asc',
      limit: a.page_size,
      ...(after ? { after } : {}),
    };
    const res = await this.#api.post('/alerts/combined/alerts/v1', body, { signal });
    const parsed = alertsPageSchema.safeParse(res.data);
    if (!parsed.success) throw unexpected('POST /alerts/combined/alerts/v1', parsed.error);
    const next = parsed.data.meta?.pagination?.after;
    return { alerts: parsed.data.resources ?? [], ...(next ? { after: next } : {}) };
  }

  /** Event Streams discovery: one feed per partition, each with its own session token. */
  async discover(signal: AbortSignal): Promise<Feed[]> {
    const res = await this.#api.get('/sensors/entities/datafeed/v2', {
      params: { appId: this.#config.stream.app_id, format: 'json' },
      signal,
    });
    const parsed = discoverySchema.safeParse(res.data);
    if (!parsed.success) throw unexpected('GET /sensors/entities/datafeed/v2', parsed.error);
    return (parsed.data.resources ?? []).map((r) => {
      registerSecretValue(r.sessionToken.token, {
        lifetimeMs: sessionTokenLifetimeMs(r.sessionToken.expiration, r.refreshActiveSessionInterval),
      });
      return {
        partition: partitionOf(r.dataFeedURL, r.refreshActiveSessionURL),
        url: r.dataFeedURL,
        token: r.sessionToken.token,
        refreshUrl: r.refreshActiveSessionURL,
        refreshIntervalMs: r.refreshActiveSessionInterval * 1000,
      };
    });
  }

  /**
   * Opens a partition's datafeed from `offset`; the body is an endless stream of JSON records,
   * read through a client without a total size limit (each record is bounded by the reader).
   */
  async open(feed: Feed, offset: number | undefined, signal: AbortSignal): Promise<Readable> {
    const url = new URL(feed.url);
    if (offset !== undefined) url.searchParams.set('offset', String(offset));
    const res = await this.#feed.get<Readable>(url.toString(), {
      headers: { authorization: `Token ${feed.token}`, accept: 'application/json' },
      responseType: 'stream',
      signal,
    });
    return res.data;
  }

  /** Keeps a partition's stream session alive. */
  async refresh(feed: Feed, signal: AbortSignal): Promise<void> {
    await this.#api.post(feed.refreshUrl, '', {
      headers: { 'content-type': 'application/json' },
      responseType: 'text',
      signal,
    });
  }

  /** A cheap authenticated call, for `check()`. */
  async probe(signal: AbortSignal): Promise<void> {
    if (this.#config.mode === 'stream') {
      await this.discover(signal);
      return;
    }
    await this.#api.get('/alerts/queries/alerts/v2', { params: { limit: 1 }, signal });
  }
}
