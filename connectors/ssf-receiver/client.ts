import {
  ConfigError,
  PermanentError,
  MAX_JWKS_BYTES,
  checkTargetUrl,
  guardedHttpClient,
  receivableEventTypes,
  type HttpAuth,
  type HttpClient,
  type InboundContext,
  type SsrfPolicy,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';
import type { SsfReceiverConfig } from './config.ts';

export const PUSH_METHOD = 'urn:ietf:rfc:8935';
export const POLL_METHOD = 'urn:ietf:rfc:8936';
const WELL_KNOWN = '/.well-known/ssf-configuration';

/** The parts of the Transmitter Configuration Metadata (SSF 1.0 §7.1) the receiver uses. */
export interface TransmitterMetadata {
  issuer: string;
  jwks_uri: string;
  configuration_endpoint?: string;
  status_endpoint?: string;
  verification_endpoint?: string;
  add_subject_endpoint?: string;
  remove_subject_endpoint?: string;
  delivery_methods_supported?: string[];
  /**
   * Complex-subject members a receiver must understand, or discard the event (SSF 1.0 §3.6,
   * §7.1); only the strings of the metadata's array are kept.
   */
  critical_subject_members?: string[];
}

export interface StreamConfig {
  stream_id: string;
  iss?: string;
  aud?: string | string[];
  delivery?: { method?: string; endpoint_url?: string };
  events_supported?: string[];
  events_requested?: string[];
  events_delivered?: string[];
  description?: string;
  /** Seconds the transmitter wants between verification requests (SSF 1.0 §8.1.1). */
  min_verification_interval?: number;
}

export interface PollResponse {
  sets: Record<string, string>;
  moreAvailable?: boolean;
}

/**
 * The metadata URL of an issuer (SSF 1.0 §7.2.1): the well-known path is inserted between the
 * host and the issuer's path, so `https://tx.example/t1` is described at
 * `https://tx.example/.well-known/ssf-configuration/t1`.
 */
export function metadataUrl(issuer: string): string {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, '');
  return `${url.protocol}//${url.host}${WELL_KNOWN}${path}`;
}

function httpAuth(auth: SsfReceiverConfig['auth']): HttpAuth {
  if (auth.type === 'bearer') return { type: 'bearer', token: auth.token };
  return {
    type: 'oauth2_client_credentials',
    tokenUrl: auth.token_url,
    clientId: auth.client_id,
    clientSecret: auth.client_secret,
    clientAuth: auth.client_auth,
    ...(auth.scope ? { scope: auth.scope } : {}),
    ...(auth.audience ? { audience: auth.audience } : {}),
    ...(auth.dpop === undefined ? {} : { dpop: auth.dpop }),
  };
}

function requireString(doc: Record<string, unknown>, name: string, where: string): string {
  const value = doc[name];
  if (typeof value !== 'string' || value.length === 0) {
    throw new PermanentError(`${where} has no ${name}`, { code: 'SSF_ERR_RECEIVER_METADATA' });
  }
  return value;
}

const MANAGEMENT_ENDPOINTS = [
  'configuration_endpoint',
  'status_endpoint',
  'verification_endpoint',
  'add_subject_endpoint',
  'remove_subject_endpoint',
] as const;

/** The SSRF policy for URLs the transmitter chose; the configured issuer's host is trusted. */
function transmitterPolicy(config: SsfReceiverConfig): SsrfPolicy {
  const trusted = [config.issuer, ...(config.metadata_url ? [config.metadata_url] : [])].map(
    (url) => new URL(url).hostname,
  );
  return { ...config.ssrf, allowHosts: [...(config.ssrf.allowHosts ?? []), ...trusted] };
}

/**
 * The transmitter's management API (SSF 1.0 §8) and poll endpoint (RFC 8936). The URLs of both
 * come from the transmitter, so they are reached through an SSRF-guarded client (https only
 * unless allowed), and the management credentials go only to the issuer's origin or one listed
 * in `endpoint_origins`.
 */
export class TransmitterClient {
  readonly #api: HttpClient;
  readonly #keys: HttpClient;
  readonly #plain: HttpClient;
  readonly #config: SsfReceiverConfig;
  readonly #policy: SsrfPolicy;
  readonly #origins: Set<string>;
  readonly #log: InboundContext['logger'];
  metadata: TransmitterMetadata | undefined;

  constructor(ctx: InboundContext, config: SsfReceiverConfig) {
    this.#config = config;
    this.#log = ctx.logger;
    this.#policy = transmitterPolicy(config);
    this.#origins = new Set([config.issuer, ...config.endpoint_origins].map((url) => new URL(url).origin));
    const timeoutMs = config.request_timeout;
    this.#api = guardedHttpClient(ctx.http, { auth: httpAuth(config.auth), timeoutMs }, this.#policy);
    // A JWKS is a few kilobytes: read at most what the core's JWKS fetcher reads, not the
    // generic 10 MiB, so a transmitter cannot make every unknown kid cost megabytes.
    this.#keys = guardedHttpClient(ctx.http, { timeoutMs, maxResponseBytes: MAX_JWKS_BYTES }, this.#policy);
    // Only for the metadata document, whose URL is the operator's.
    this.#plain = ctx.http.create({ timeoutMs });
  }

  /** Fetches a JWKS document for the verifier (no credentials are sent). */
  async fetchJwks(url: string, signal: AbortSignal): Promise<unknown> {
    const response = await this.#keys.get(url, { signal, headers: { accept: 'application/json' } });
    return response.data;
  }

  /**
   * SSF 1.0 §7.2.4, §7.1 (SSF-17/18): a URL the transmitter gives must be https (unless the
   * configuration allows plain http for its host) and pass the SSRF policy; one that receives the
   * management credentials must also be on the issuer's origin or one configured.
   */
  checkTransmitterUrl(what: string, url: string, credentials: boolean): void {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      throw new ConfigError(`the transmitter's ${what} "${url}" is not a valid absolute URL`, {
        code: 'SSF_ERR_RECEIVER_ENDPOINT_REFUSED',
      });
    }
    if (credentials && !this.#origins.has(origin)) {
      throw new ConfigError(
        `the transmitter's ${what} ${url} is not on the issuer's origin ${new URL(this.#config.issuer).origin}; ` +
          'the management credentials are not sent there (list its origin in endpoint_origins if it is the transmitter’s)',
        { code: 'SSF_ERR_RECEIVER_ENDPOINT_ORIGIN' },
      );
    }
    const verdict = checkTargetUrl(url, this.#policy);
    if (!verdict.ok) {
      const hint =
        verdict.reason === 'insecure_scheme' ? ' (plain http needs its host in ssrf.allow_http_hosts)' : '';
      throw new ConfigError(`the transmitter's ${what} ${url} is refused: ${verdict.message}${hint}`, {
        code: 'SSF_ERR_RECEIVER_ENDPOINT_REFUSED',
        detail: { reason: verdict.reason },
      });
    }
  }

  /** Reads the metadata and checks that it describes the configured issuer (SSF 1.0 §7.2.1). */
  async discover(signal: AbortSignal): Promise<TransmitterMetadata> {
    const url = this.#config.metadata_url ?? metadataUrl(this.#config.issuer);
    const response = await this.#plain.get<unknown>(url, { signal });
    const doc = response.data;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new PermanentError(`${url} did not return a JSON object`, { code: 'SSF_ERR_RECEIVER_METADATA' });
    }
    const record = doc as Record<string, unknown>;
    const issuer = requireString(record, 'issuer', url);
    if (issuer !== this.#config.issuer) {
      throw new ConfigError(
        `the transmitter metadata at ${url} names issuer "${issuer}", not the configured "${this.#config.issuer}"`,
        { code: 'SSF_ERR_RECEIVER_ISSUER_MISMATCH' },
      );
    }
    this.checkTransmitterUrl('jwks_uri', requireString(record, 'jwks_uri', url), false);
    requireString(record, 'configuration_endpoint', url);
    for (const name of MANAGEMENT_ENDPOINTS) {
      const value = record[name];
      if (value === undefined) continue;
      if (typeof value !== 'string') {
        throw new PermanentError(`${url} has a ${name} that is not a string`, {
          code: 'SSF_ERR_RECEIVER_METADATA',
        });
      }
      this.checkTransmitterUrl(name, value, true);
    }
    const methods = record.delivery_methods_supported;
    const wanted = this.#config.delivery.method === 'push' ? PUSH_METHOD : POLL_METHOD;
    if (Array.isArray(methods) && !methods.includes(wanted)) {
      throw new ConfigError(
        `the transmitter does not support ${wanted} delivery (it offers ${methods.join(', ')})`,
        {
          code: 'SSF_ERR_RECEIVER_DELIVERY',
        },
      );
    }
    const critical = record.critical_subject_members;
    if (critical !== undefined && !Array.isArray(critical)) {
      this.#log.warn(
        { critical_subject_members: critical },
        'the transmitter metadata has a critical_subject_members that is not an array; it is ignored',
      );
    }
    this.metadata = {
      ...(record as unknown as TransmitterMetadata),
      critical_subject_members: Array.isArray(critical)
        ? critical.filter((m): m is string => typeof m === 'string' && m.length > 0)
        : [],
    };
    return this.metadata;
  }

  #endpoint(name: (typeof MANAGEMENT_ENDPOINTS)[number]): string {
    const value = this.metadata?.[name];
    if (!value) {
      throw new PermanentError(`the transmitter metadata has no ${name}`, {
        code: 'SSF_ERR_RECEIVER_METADATA',
      });
    }
    return value;
  }

  #delivery(): Record<string, unknown> {
    const d = this.#config.delivery;
    return d.method === 'push'
      ? {
          method: PUSH_METHOD,
          endpoint_url: d.endpoint_url,
          authorization_header: d.authorization_header.reveal(),
        }
      : { method: POLL_METHOD };
  }

  /**
   * SSF 1.0 §8.1.1: a stream is used only when its `iss` is the issuer whose metadata this
   * receiver read; one that names another issuer is refused, and nothing more is asked of it.
   */
  #ofThisIssuer(stream: StreamConfig): StreamConfig {
    if (stream.iss !== undefined && stream.iss !== this.#config.issuer) {
      throw new PermanentError(
        `stream ${stream.stream_id} names issuer "${String(stream.iss)}", not "${this.#config.issuer}"; it is not used`,
        { code: 'SSF_ERR_RECEIVER_STREAM_ISSUER' },
      );
    }
    return stream;
  }

  /** Reads a stream; undefined when the transmitter does not know it (404). */
  async readStream(streamId: string, signal: AbortSignal): Promise<StreamConfig | undefined> {
    const response = await this.#api.get<StreamConfig>(this.#endpoint('configuration_endpoint'), {
      params: { stream_id: streamId },
      signal,
      acceptStatuses: [404],
    });
    return response.status === 404 ? undefined : this.#ofThisIssuer(response.data);
  }

  /** Lists the streams of this client. */
  async listStreams(signal: AbortSignal): Promise<StreamConfig[]> {
    const response = await this.#api.get<unknown>(this.#endpoint('configuration_endpoint'), { signal });
    const data = response.data;
    if (Array.isArray(data)) return (data as StreamConfig[]).map((s) => this.#ofThisIssuer(s));
    if (data && typeof data === 'object' && 'stream_id' in data)
      return [this.#ofThisIssuer(data as StreamConfig)];
    return [];
  }

  /** Creates a stream; undefined when the transmitter allows one stream per client and has it (409). */
  async createStream(signal: AbortSignal): Promise<StreamConfig | undefined> {
    const body: Record<string, unknown> = { delivery: this.#delivery() };
    // RX-03: always a non-empty events_requested; without one, some transmitters deliver every type
    // they support, SSF's payload-less control types included.
    body.events_requested =
      this.#config.events_requested.length > 0 ? this.#config.events_requested : receivableEventTypes();
    if (this.#config.description) body.description = this.#config.description;
    const response = await this.#api.post<StreamConfig>(this.#endpoint('configuration_endpoint'), body, {
      signal,
      acceptStatuses: [409],
    });
    return response.status === 409 ? undefined : this.#ofThisIssuer(response.data);
  }

  /**
   * Brings an adopted stream in line with the configuration: its delivery (`delivery: true`), and
   * the configured `events_requested` and `description` when the stream has others.
   */
  async updateStream(
    found: StreamConfig,
    changes: { delivery: boolean },
    signal: AbortSignal,
  ): Promise<StreamConfig> {
    const body: Record<string, unknown> = {};
    if (changes.delivery) body.delivery = this.#delivery();
    const wanted = this.#config.events_requested;
    const current = new Set(found.events_requested ?? []);
    if (wanted.length > 0 && (wanted.length !== current.size || wanted.some((e) => !current.has(e)))) {
      body.events_requested = wanted;
    }
    if (this.#config.description !== undefined && this.#config.description !== found.description) {
      body.description = this.#config.description;
    }
    if (Object.keys(body).length === 0) return found;
    return this.#modify(found, body, changes.delivery, signal);
  }

  /**
   * Changes receiver-supplied properties of a stream: with PATCH (SSF 1.0 §8.1.1.3), which sends
   * only what changes; when the transmitter has no PATCH (405, 501), by replacing the
   * configuration with PUT (§8.1.1.4), which carries every receiver-supplied property, the ones
   * not changed as the stream has them (a property left out of a PUT is deleted). Updates are
   * optional for a transmitter (CAEP Interop 1.0 requires none): one that has neither keeps the
   * stream as it is, unless `required` (its delivery must change), which is a permanent error.
   */
  async #modify(
    found: StreamConfig,
    changes: Record<string, unknown>,
    required: boolean,
    signal: AbortSignal,
  ): Promise<StreamConfig> {
    const url = this.#endpoint('configuration_endpoint');
    const unsupported = [405, 501] as const;
    const patched = await this.#api.request<StreamConfig>({
      method: 'PATCH',
      url,
      body: { stream_id: found.stream_id, ...changes },
      signal,
      acceptStatuses: unsupported,
    });
    if (!unsupported.includes(patched.status as 405 | 501)) return this.#updated(found, changes, patched);
    const replacement = this.#replacement(found, changes);
    const replaced = await this.#api.request<StreamConfig>({
      method: 'PUT',
      url,
      body: replacement,
      signal,
      acceptStatuses: unsupported,
    });
    if (!unsupported.includes(replaced.status as 405 | 501)) {
      this.#log.info(
        { streamId: found.stream_id },
        'the transmitter does not update streams (PATCH); replaced the stream configuration (PUT)',
      );
      return this.#updated(found, replacement, replaced);
    }
    if (required) {
      throw new PermanentError(
        `the transmitter neither updates (PATCH ${patched.status}) nor replaces (PUT ${replaced.status}) streams, ` +
          `and stream ${found.stream_id} must be given this instance's delivery; delete it at the transmitter, or let this instance create its own`,
        { code: 'SSF_ERR_RECEIVER_STREAM_UPDATE' },
      );
    }
    this.#log.warn(
      { streamId: found.stream_id, patch: patched.status, put: replaced.status },
      'the transmitter neither updates nor replaces streams; the stream keeps its events_requested and description',
    );
    return found;
  }

  /**
   * The whole receiver-supplied configuration of a stream (SSF 1.0 §8.1.1.4): `changes` over what
   * the stream has. The delivery is always this instance's (a PUT without one means poll); the
   * events requested are never left empty (RX-03).
   */
  #replacement(found: StreamConfig, changes: Record<string, unknown>): Record<string, unknown> {
    const events = (changes.events_requested as string[] | undefined) ?? found.events_requested ?? [];
    const description = (changes.description as string | undefined) ?? found.description;
    return {
      stream_id: found.stream_id,
      delivery: this.#delivery(),
      events_requested: events.length > 0 ? events : receivableEventTypes(),
      ...(description !== undefined ? { description } : {}),
    };
  }

  /** The stream as an update answered it; a 202 without a configuration: as asked. */
  #updated(
    found: StreamConfig,
    sent: Record<string, unknown>,
    response: { status: number; data: StreamConfig },
  ): StreamConfig {
    const data = response.data as unknown;
    if (data !== null && typeof data === 'object' && 'stream_id' in data) {
      return this.#ofThisIssuer(data as StreamConfig);
    }
    const { stream_id: _id, delivery: _delivery, ...rest } = sent;
    return { ...found, ...rest } as StreamConfig;
  }

  /** Adds a subject to a stream (SSF 1.0 §8.1.3.2): the receiver names it, so it is verified. */
  async addSubject(streamId: string, subject: SubjectIdentifier, signal: AbortSignal): Promise<void> {
    await this.#api.post(
      this.#endpoint('add_subject_endpoint'),
      { stream_id: streamId, subject, verified: true },
      { signal },
    );
  }

  /**
   * Removes a subject from a stream (SSF 1.0 §8.1.3.3); a subject the transmitter does not know
   * (404, which §8.1.3.3 allows) is not on the stream either.
   */
  async removeSubject(streamId: string, subject: SubjectIdentifier, signal: AbortSignal): Promise<void> {
    await this.#api.post(
      this.#endpoint('remove_subject_endpoint'),
      { stream_id: streamId, subject },
      { signal, acceptStatuses: [404] },
    );
  }

  /** Deletes a stream (SSF 1.0 §8.1.1.5); one the transmitter no longer knows (404) is gone too. */
  async deleteStream(streamId: string, signal: AbortSignal): Promise<void> {
    await this.#api.request({
      method: 'DELETE',
      url: this.#endpoint('configuration_endpoint'),
      params: { stream_id: streamId },
      signal,
      acceptStatuses: [404],
    });
  }

  /** Sets the event types an existing stream delivers (PATCH, else PUT; kept when neither is there). */
  async updateEvents(found: StreamConfig, events: string[], signal: AbortSignal): Promise<StreamConfig> {
    return this.#modify(found, { events_requested: events }, false, signal);
  }

  /** The stream's status: enabled, paused or disabled (SSF 1.0 §8.1.2.1). */
  async readStatus(
    streamId: string,
    signal: AbortSignal,
  ): Promise<{ status: string; reason?: string } | undefined> {
    if (!this.metadata?.status_endpoint) return undefined;
    const response = await this.#api.get<{ status: string; reason?: string }>(this.metadata.status_endpoint, {
      params: { stream_id: streamId },
      signal,
    });
    return response.data;
  }

  /**
   * Sets the stream's status (SSF 1.0 §8.1.2.2). A transmitter that has not decided yet (202)
   * leaves it as it was: undefined then, and the status events tell what it does.
   */
  async updateStatus(
    streamId: string,
    status: 'enabled' | 'paused' | 'disabled',
    signal: AbortSignal,
  ): Promise<{ status: string; reason?: string } | undefined> {
    const response = await this.#api.post<{ status: string; reason?: string }>(
      this.#endpoint('status_endpoint'),
      { stream_id: streamId, status },
      { signal },
    );
    return response.status === 202 ? undefined : response.data;
  }

  /** Asks for a verification event carrying `state` (SSF 1.0 §8.1.4.2). */
  async requestVerification(streamId: string, state: string, signal: AbortSignal): Promise<void> {
    await this.#api.post(this.#endpoint('verification_endpoint'), { stream_id: streamId, state }, { signal });
  }

  /** One RFC 8936 poll: acknowledges `ack`, reports `setErrs`, and waits for SETs. */
  async poll(
    url: string,
    body: { maxEvents: number; returnImmediately: boolean; ack: string[]; setErrs: Record<string, unknown> },
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<PollResponse> {
    const payload: Record<string, unknown> = {
      maxEvents: body.maxEvents,
      returnImmediately: body.returnImmediately,
    };
    if (body.ack.length > 0) payload.ack = body.ack;
    const reportsErrors = Object.keys(body.setErrs).length > 0;
    if (reportsErrors) payload.setErrs = body.setErrs;
    const response = await this.#api.post<PollResponse>(url, payload, {
      signal,
      timeoutMs,
      // RFC 8936 §2.6: error descriptions come with their language.
      ...(reportsErrors ? { headers: { 'content-language': 'en' } } : {}),
    });
    const data = response.data;
    const sets = data && typeof data === 'object' ? (data as { sets?: unknown }).sets : undefined;
    // RFC 8936 §2.3: an object of jti → SET. An array would be acknowledged by its indexes.
    if (typeof sets !== 'object' || sets === null || Array.isArray(sets)) {
      throw new PermanentError(`the poll response of ${url} has no "sets" object`, {
        code: 'SSF_ERR_RECEIVER_POLL_RESPONSE',
      });
    }
    return data;
  }
}
