import type { z } from 'zod';
import type { ConnectorManifest } from './manifest.ts';
import type { Secret } from './secret.ts';

/** A subject identifier (RFC 9493 or an SSF complex subject), e.g. {format:'email', email:'a@b.c'}. */
export type SubjectIdentifier = { format: string } & Record<string, unknown>;

export type Severity = 'low' | 'medium' | 'high' | 'critical';

/**
 * What an inbound connector emits: a typed security event, never a JWT. The core validates it
 * against the event catalog, de-duplicates, routes, and builds one SET per destination.
 */
export interface EventDraft {
  /** Event type URI, or a short name such as `caep.session-revoked`. */
  type: string;
  subject: SubjectIdentifier;
  /** Claims of the event object (e.g. current_status, event_timestamp, reason_admin). */
  claims?: Record<string, unknown>;
  /** The upstream record this event came from; with the instance id it makes the SET jti stable. */
  sourceRecordId: string;
  /** When it happened at the source. Defaults to the time the core accepted it. */
  occurredAt?: Date | string;
  /** Groups SETs born of one source record (SET `txn`). Defaults to a hash of sourceRecordId. */
  txn?: string;
  /** Used by routing filters. */
  severity?: Severity;
}

/** The outcome of mapping one vendor record: events, or a reason it was ignored. */
export type MappingResult<S = unknown> =
  { events: EventDraft[]; state?: S; ignored?: undefined } | { events: []; ignored: string; state?: S };

export interface Logger {
  trace(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export interface Clock {
  now(): Date;
}

export type InstanceState =
  'starting' | 'ok' | 'recoverable_error' | 'permanent_error' | 'stopping' | 'stopped';

export interface StatusReporter {
  set(state: InstanceState, reason?: string): void;
  /** Records a successful unit of work (a poll, a delivery); clears recoverable errors. */
  success(): void;
}

export interface Counter {
  inc(labels?: Record<string, string>, value?: number): void;
}
export interface Histogram {
  observe(labels: Record<string, string> | undefined, value: number): void;
}
export interface Gauge {
  set(labels: Record<string, string> | undefined, value: number): void;
}
/** Metrics scoped to one instance: every series carries `instance_id` and `connector` labels. */
export interface ConnectorMetrics {
  counter(name: string, help: string, labelNames?: string[]): Counter;
  histogram(name: string, help: string, labelNames?: string[], buckets?: number[]): Histogram;
  gauge(name: string, help: string, labelNames?: string[]): Gauge;
}

export type HttpAuth =
  | { type: 'bearer'; token: Secret }
  | { type: 'basic'; username: string; password: Secret }
  | { type: 'header'; name: string; value: Secret }
  | {
      type: 'oauth2_client_credentials';
      tokenUrl: string;
      clientId: string;
      clientSecret: Secret;
      scope?: string;
      audience?: string;
      /** `body` sends the client credentials as form fields; `basic` (default) as Basic auth. */
      clientAuth?: 'basic' | 'body';
      extraParams?: Record<string, string>;
      /**
       * DPoP (RFC 9449): `true` binds every token to a key of the client's and proves it on each
       * request; `false` never does; unset, the client turns DPoP on when the token endpoint asks
       * for it (`invalid_dpop_proof`, as Okta answers for apps that require DPoP).
       */
      dpop?: boolean;
    }
  | {
      /**
       * Client credentials where the client proves itself with a JWT signed by its private key
       * (RFC 7523 §2.2, `private_key_jwt`), as Okta requires of service apps.
       */
      type: 'oauth2_private_key_jwt';
      tokenUrl: string;
      clientId: string;
      /** PKCS#8 PEM, or a private JWK as JSON. */
      privateKey: Secret;
      /** `kid` of the assertion header; a JWK's own `kid` is used when absent. */
      keyId?: string;
      /**
       * The X.509 certificate (PEM) of the key, for servers that find the key by the thumbprint
       * of its certificate (Microsoft Entra ID): the assertion header then carries `x5t#S256`
       * and `x5t`, and an RSA key signs with PS256.
       */
      certificate?: string;
      scope?: string;
      extraParams?: Record<string, string>;
      /**
       * DPoP (RFC 9449): `true` binds every token to a key of the client's and proves it on each
       * request; `false` never does; unset, the client turns DPoP on when the token endpoint asks
       * for it (`invalid_dpop_proof`, as Okta answers for apps that require DPoP).
       */
      dpop?: boolean;
    }
  | {
      /**
       * Client credentials where the client's credential is a JWT another identity provider
       * issued for it (RFC 7523 §2.2; workload identity federation: a Kubernetes service-account
       * token, a CI job's OIDC token). The file is read at every token request: its issuer
       * rotates it.
       */
      type: 'oauth2_client_assertion_file';
      tokenUrl: string;
      clientId: string;
      /** The file holding the JWT, e.g. AKS's AZURE_FEDERATED_TOKEN_FILE. */
      assertionFile: string;
      scope?: string;
      extraParams?: Record<string, string>;
      /** As for `oauth2_client_credentials`. */
      dpop?: boolean;
    }
  | {
      /**
       * A session token bought with Basic credentials: POST to `tokenUrl`, answered with JSON
       * `{"token": …, "expires": <ISO 8601 time>}`, as Jamf Pro's user accounts sign in
       * (`/api/v1/auth/token`). Cached and renewed like an OAuth access token.
       */
      type: 'basic_session_token';
      tokenUrl: string;
      username: string;
      password: Secret;
    }
  | ({
      /**
       * A signed JWT as the authorization grant (RFC 7523 §2.1), as Google service accounts use:
       * `iss` the account, `sub` the user to act for, `scope`, `aud` the token endpoint. Signed
       * here with `privateKey`, or elsewhere by `signer`.
       */
      type: 'jwt_bearer';
      tokenUrl: string;
      issuer: string;
      /** The user the token acts for (Google domain-wide delegation). */
      subject?: string;
      scope: string;
      /** The assertion's `aud`; defaults to tokenUrl. */
      audience?: string;
    } & (
      | {
          /** PKCS#8 PEM, or a private JWK as JSON. */
          privateKey: Secret;
          /** `kid` of the assertion header; a JWK's own `kid` is used when absent. */
          keyId?: string;
          signer?: never;
        }
      | {
          /**
           * Signs the assertion's claims where the key lives (Google's IAM `signJwt` for a
           * service account without keys) and returns the compact JWT. What it throws fails the
           * token request, classified as thrown.
           */
          signer: AssertionSigner;
          privateKey?: never;
          keyId?: never;
        }
    ));

/** Signs JWT claims with a key held elsewhere; called for every token request. */
export type AssertionSigner = (claims: Record<string, unknown>) => Promise<string>;

export interface HttpClientOptions {
  baseURL?: string;
  /** Per-request timeout; defaults to 30 s. Zero or negative values are refused. */
  timeoutMs?: number;
  /** Largest response body accepted; defaults to 10 MiB. */
  maxResponseBytes?: number;
  headers?: Record<string, string>;
  auth?: HttpAuth;
  userAgent?: string;
}

export interface HttpRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  url: string;
  params?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** Objects are sent as JSON; strings and Buffers as they are. */
  body?: unknown;
  timeoutMs?: number;
  responseType?: 'json' | 'text' | 'stream' | 'arraybuffer';
  signal?: AbortSignal;
  /**
   * Non-2xx statuses answered as responses instead of thrown, for protocols whose error bodies
   * say what to do next (RFC 8935's `err`, Google's rate-limit reasons). With responseType
   * `json`, a body that is not JSON comes back as undefined for these statuses.
   */
  acceptStatuses?: readonly number[];
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Record<string, string>;
  data: T;
}

/**
 * The only way a connector reaches the network. Non-2xx answers and network failures throw
 * classified errors (RetryableError / PermanentError); requests are aborted when the
 * instance stops.
 */
export interface HttpClient {
  request<T = unknown>(req: HttpRequest): Promise<HttpResponse<T>>;
  get<T = unknown>(url: string, req?: Omit<HttpRequest, 'url' | 'method'>): Promise<HttpResponse<T>>;
  post<T = unknown>(
    url: string,
    body?: unknown,
    req?: Omit<HttpRequest, 'url' | 'method' | 'body'>,
  ): Promise<HttpResponse<T>>;
}

export interface HttpClientFactory {
  create(options?: HttpClientOptions): HttpClient;
}

/** Durable per-instance state, keyed by (instance id, name). Values are JSON. */
export interface CheckpointAccess<S = unknown> {
  get(name?: string): Promise<S | undefined>;
  set(value: S, name?: string): Promise<void>;
}

export interface ScheduleOptions {
  /** A cron expression (UTC) ... */
  cron?: string;
  /** ... or a fixed interval in milliseconds. */
  everyMs?: number;
  /** Random delay added to each run, in milliseconds. */
  jitterMs?: number;
  /** Run once right after start. */
  runOnStart?: boolean;
  /** A run that takes longer is aborted through its signal. */
  timeoutMs?: number;
}

export interface ScheduledTask {
  stop(): void;
}

export interface Scheduler {
  /** Runs `task` on the schedule, never overlapping itself, in UTC. */
  schedule(
    name: string,
    options: ScheduleOptions,
    task: (signal: AbortSignal) => Promise<void>,
  ): ScheduledTask;
}

export interface EmitOptions {
  /**
   * Committed to the checkpoint store in the same transaction as the events. With `expected`,
   * only if the stored checkpoint is still `expected.value` (undefined: none stored) — the value
   * `checkpoints.get()` returned. Otherwise emit rejects with a RetryableError coded
   * `SSF_ERR_CHECKPOINT_CONFLICT` and nothing is written: another instance changed the state
   * meanwhile, and the work is to be done again from the state it left.
   */
  checkpoint?: { value: unknown; name?: string; expected?: { value: unknown } };
}

export interface EmitResult {
  /** Ids of the accepted events (new or already known). */
  accepted: string[];
  /** Events dropped as duplicates of events already accepted in the dedupe window. */
  duplicates: number;
}

export interface ConnectorContext<S = unknown> {
  readonly instanceId: string;
  readonly connectorId: string;
  readonly logger: Logger;
  readonly http: HttpClientFactory;
  readonly checkpoints: CheckpointAccess<S>;
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly metrics: ConnectorMetrics;
  readonly status: StatusReporter;
  /** Aborted when the instance stops. */
  readonly signal: AbortSignal;
}

export interface InboundContext<S = unknown> extends ConnectorContext<S> {
  /**
   * Hands events to the core. Resolves only once they are durable in the outbox (and the
   * checkpoint, if given, is committed with them). Rejects with RetryableError when the outbox
   * is full, so pollers wait and webhooks answer 503.
   */
  emit(events: EventDraft[], options?: EmitOptions): Promise<EmitResult>;
  /** The devices MDM sources of this bridge know, and their assigned users. */
  readonly devices: DeviceDirectory;
  /** Ids of what this instance received, kept in the store until they expire (see ReceivedIds). */
  readonly receivedIds: ReceivedIds;
}

/**
 * Ids of what an inbound instance received (a SET's issuer and jti, a webhook's delivery id), for
 * refusing the same message twice. They are kept in the bridge's store, one row each, until they
 * expire: a repeat is recognised after a restart and by every bridge instance sharing the
 * database, and no number of ids pushes others out. Each instance sees only its own.
 */
export interface ReceivedIds {
  /** Whether `id` was added and has not expired at `now`; rejects with RetryableError when the store cannot be read. */
  has(id: string, now: Date): Promise<boolean>;
  /** Remembers `id` until `expiresAt` (an id already remembered keeps its expiry); rejects with RetryableError when it cannot be written. */
  add(id: string, expiresAt: Date, now: Date): Promise<void>;
}

/** A device's assigned user, as one MDM source's device record names it. */
export interface DeviceOwner {
  /** E-mail address of the assigned user. */
  email: string;
  /** The MDM instance whose record names the user. */
  instance: string;
  /** The device as that source knows it (its hostname, else its vendor id). */
  device: string;
}

/**
 * What device records say of the devices a connector names: `owner` when every matching record
 * that names a user names the same one; `ambiguous` when they name different users (nothing is
 * guessed); `none` when no record matches or none names a user.
 */
export type DeviceOwnerAnswer =
  { found: 'owner'; owner: DeviceOwner } | { found: 'ambiguous'; owners: DeviceOwner[] } | { found: 'none' };

/**
 * Looks devices up by name (hostname, serial number, Entra device id, UDID, vendor id; compared
 * case-insensitively, a fully qualified hostname also by its first label) in a snapshot.
 */
export type DeviceOwnerLookup = (names: ReadonlyArray<string | null | undefined>) => DeviceOwnerAnswer;

export interface DeviceDirectory {
  /**
   * A snapshot of the device records of the MDM instances `sources` (at most 30 s old), for
   * looking up many devices at once. Rejects with RetryableError when the store cannot be read,
   * and with ConfigError when a source is not an MDM instance of this bridge (config loading
   * refuses that first when the connector declares its `references`).
   */
  owners(sources: readonly string[]): Promise<DeviceOwnerLookup>;
}

/** Another instance an instance's config names, checked when the config loads. */
export interface InstanceReference {
  /** Where in the instance's config the id is written, e.g. `['subjects', 'device_owners', 0]`. */
  path: Array<string | number>;
  /** The id of the instance named. */
  instance: string;
  /** What the instance named must be: `device-records`, an MDM source whose device records `ctx.devices` reads. */
  needs: 'device-records';
}

export interface CheckResult {
  ok: boolean;
  message?: string;
  retryable?: boolean;
}

export interface Lifecycle {
  /** Optional connectivity test; returns a structured result rather than throwing. */
  check?(signal: AbortSignal): Promise<CheckResult>;
  /** Starts background work and returns quickly. */
  start(signal: AbortSignal): Promise<void>;
  /** Stops; idempotent and safe without start. Must settle within deadlineMs. */
  stop(deadlineMs: number): Promise<void>;
}

/** A request to `POST /ingest/<instance-id>` handed to a webhook-style inbound connector. */
export interface InboundRequest {
  method: string;
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  /** The raw body exactly as received (signatures are computed over it). */
  rawBody: Buffer;
  /** The body parsed as JSON when the content type says so; undefined otherwise. */
  body: unknown;
  remoteAddress: string;
  /**
   * The path below the instance's base URL, starting with `/`: `/` for `/ingest/<id>`, and e.g.
   * `/Users/2819c223` for `/scim/v2/<id>/Users/2819c223` (protocols with resource paths).
   */
  path?: string;
}

export interface InboundResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * An answer the HTTP server makes itself for a connector's endpoint: `malformed_json` (400),
 * `body_too_large` (413), `invalid_request` (another 4xx), `unavailable` (503, a RetryableError
 * thrown by handleWebhook, such as a full outbox) or `internal_error` (500).
 */
export interface InboundServerError {
  status: number;
  kind: 'malformed_json' | 'body_too_large' | 'invalid_request' | 'unavailable' | 'internal_error';
  /** Why, in words fit for the client. */
  message: string;
}

export interface InboundConnector extends Lifecycle {
  /** Present when the connector receives pushes at `/ingest/<instance-id>`. */
  handleWebhook?(req: InboundRequest): Promise<InboundResponse>;
  /**
   * The server hands the body on unparsed (`body` undefined, `rawBody` as received) and refuses
   * nothing for its syntax, so the connector can authenticate a request before judging its body.
   */
  readonly parsesOwnBody?: boolean;
  /**
   * Shapes the answers the server makes itself for this connector's endpoint in the connector's
   * protocol (e.g. SCIM error bodies). The status and the server's headers (Retry-After) are kept;
   * the headers returned are added to them.
   */
  serverErrorResponse?(error: InboundServerError): Omit<InboundResponse, 'status'>;
}

/** A SET ready for an outbound connector. */
export interface SignedSet {
  /** Compact JWS. */
  jwt: string;
  jti: string;
  /** The decoded SET claims (iss, iat, jti, aud, txn, sub_id, events). */
  claims: Record<string, unknown>;
  /** The event type URI of the single event the SET carries. */
  eventType: string;
  /** The event object (`events[eventType]`). */
  event: Record<string, unknown>;
  subject: SubjectIdentifier;
  /** Number of earlier attempts for this delivery (0 on the first). */
  attempt: number;
  /**
   * Where the event came from: the inbound instance, its connector, and the record id the source
   * gave it. Set by the delivery engine; absent for SETs made elsewhere.
   */
  source?: { instance: string; connector?: string; record: string };
}

export interface DeliveryReceipt {
  /** Short description of what the target did (shown to operators). */
  detail?: string;
  /** HTTP status or equivalent the target answered. */
  status?: number;
}

/** How the core shapes SETs for an outbound instance. */
export interface SigningTarget {
  audience: string | string[];
  /** Target profile (dialect), e.g. `ssf-1.0` (default), `okta-itp`, `google-workspace`. */
  profile?: string;
  /** Options of that profile, e.g. `{ include_device: true }` for okta-itp (see docs/ssf.md). */
  profileOptions?: Record<string, unknown>;
}

export interface OutboundConnector extends Lifecycle {
  readonly target: SigningTarget;
  /**
   * Optional: adjusts an event just before its SET is built for this destination, e.g. to fill
   * a claim the target requires from the connector's own state (Okta's previous_level). Called
   * on every attempt; the jti stays the same.
   */
  prepare?(event: EventDraft, signal: AbortSignal): Promise<EventDraft>;
  /** Delivers one SET. Resolves when the target accepted it; throws classified errors. */
  deliver(set: SignedSet, signal: AbortSignal): Promise<DeliveryReceipt>;
}

interface DefinitionBase<C extends z.ZodType> {
  manifest: ConnectorManifest;
  configSchema: C;
  /** Example configs (documented, validated by the conformance kit). */
  examples?: Array<{ title: string; config: z.input<C> }>;
}

export interface InboundDefinition<C extends z.ZodType = z.ZodType, S = unknown> extends DefinitionBase<C> {
  kind: 'inbound';
  stateSchema?: z.ZodType<S>;
  /** Pure mapping of one vendor record, for dry runs (`ssf-bridge simulate`) and fixtures. */
  map?(record: unknown, config: z.output<C>, state?: S): MappingResult<S>;
  /** Other instances the config names (checked when the config loads: unknown ones are refused). */
  references?(config: z.output<C>): InstanceReference[];
  /** Creates an instance; must do no I/O. */
  create(ctx: InboundContext<S>, config: z.output<C>): InboundConnector;
}

export interface OutboundDefinition<C extends z.ZodType = z.ZodType> extends DefinitionBase<C> {
  kind: 'outbound';
  /** Creates an instance; must do no I/O. */
  create(ctx: ConnectorContext, config: z.output<C>): OutboundConnector;
}

export type ConnectorDefinition = InboundDefinition<z.ZodType, any> | OutboundDefinition<z.ZodType>;
