/**
 * The stream configuration object (SSF 1.0 §8.1.1): how it is stored, how requests that create
 * or change it are read, and how it is rendered. Pure functions; the service does the I/O.
 *
 * Receiver-supplied properties: events_requested, delivery, description. Transmitter-supplied:
 * stream_id, iss, aud, events_supported, events_delivered, min_verification_interval,
 * inactivity_timeout (and the endpoint_url of poll delivery).
 */
import { POLL_METHOD, PUSH_METHOD } from './config.ts';
import { badRequest } from './errors.ts';
import { findEventType } from '../ssf/events/catalog.ts';

export type PushDelivery = {
  method: typeof PUSH_METHOD;
  endpoint_url: string;
  authorization_header?: string;
};
export type DeliveryConfig = PushDelivery | { method: typeof POLL_METHOD };

/** What the store keeps in StreamRecord.config. iss and events_supported are rendered from config. */
export interface StoredStreamConfig {
  aud: string | string[];
  events_requested?: string[];
  delivery: DeliveryConfig;
  description?: string;
  /** Bookkeeping that is never rendered. */
  internal: {
    /** Changes whenever anything routing depends on changes (status, events, subjects). */
    rev: string;
    provisioned?: boolean;
    /** Epoch ms of the last verification request (min_verification_interval). */
    last_verification_at?: number;
    /** Epoch ms of the last eligible activity (inactivity_timeout, SSF 1.0 §8.1.1). */
    last_activity_at?: number;
  };
}

export interface ReceiverFields {
  events_requested?: string[];
  delivery?: DeliveryConfig;
  description?: string;
}

export const TRANSMITTER_FIELDS = [
  'iss',
  'aud',
  'events_supported',
  'events_delivered',
  'min_verification_interval',
  'inactivity_timeout',
] as const;

export interface StreamRequest {
  streamId?: string;
  fields: ReceiverFields;
  /** Transmitter-supplied properties the request carries (checked on update, ignored on create). */
  transmitterFields: Record<string, unknown>;
  /** endpoint_url sent with a poll delivery (transmitter-supplied). */
  pollEndpointUrl?: string;
}

const MAX_EVENTS_REQUESTED = 256;
export const MAX_DESCRIPTION_LENGTH = 1024;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The request body as a JSON object, or 400. */
export function requireObject(body: unknown): Record<string, unknown> {
  if (!isPlainObject(body)) throw badRequest('the request body must be a JSON object');
  return body;
}

/** A non-empty string member, or 400 naming it. */
export function requireStreamId(value: unknown, where = 'stream_id'): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw badRequest(
      `${where} is required and must be a non-empty string`,
      'SSF_ERR_TRANSMITTER_STREAM_ID_MISSING',
    );
  }
  return value;
}

function readEventsRequested(value: unknown): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw badRequest('events_requested must be an array of event type URIs');
  }
  const requested = [...new Set(value as string[])];
  if (requested.length <= MAX_EVENTS_REQUESTED) return requested;
  // SSF 1.0 §8.1.1: types the transmitter does not know are ignored, not refused. A list this
  // long keeps only the types the catalog knows, so what is stored stays bounded.
  const known = requested.filter((uri) => findEventType(uri)?.uri === uri);
  if (known.length > MAX_EVENTS_REQUESTED) {
    throw badRequest(`events_requested may list at most ${MAX_EVENTS_REQUESTED} event types`);
  }
  return known;
}

function readDelivery(value: unknown): { delivery: DeliveryConfig; pollEndpointUrl?: string } {
  if (!isPlainObject(value)) throw badRequest('delivery must be a JSON object');
  const { method, endpoint_url: endpointUrl, authorization_header: authorization } = value;
  if (method === POLL_METHOD) {
    if (endpointUrl !== undefined && typeof endpointUrl !== 'string')
      throw badRequest('delivery.endpoint_url must be a string');
    return {
      delivery: { method: POLL_METHOD },
      ...(typeof endpointUrl === 'string' ? { pollEndpointUrl: endpointUrl } : {}),
    };
  }
  if (method === PUSH_METHOD) {
    if (typeof endpointUrl !== 'string' || endpointUrl.length === 0) {
      throw badRequest(
        "push delivery (urn:ietf:rfc:8935) needs the receiver's endpoint_url",
        'SSF_ERR_TRANSMITTER_DELIVERY_INVALID',
      );
    }
    if (authorization !== undefined && (typeof authorization !== 'string' || authorization.length === 0)) {
      throw badRequest(
        'delivery.authorization_header must be a non-empty string',
        'SSF_ERR_TRANSMITTER_DELIVERY_INVALID',
      );
    }
    if (typeof authorization === 'string' && !/^[\x20-\x7e]{1,8192}$/.test(authorization)) {
      // An HTTP header value Node would refuse at every push (RFC 9110 §5.5; non-ASCII is
      // garbled as Latin-1): refused here, instead of retried for days.
      throw badRequest(
        'delivery.authorization_header must be one line of printable ASCII (at most 8192 characters)',
        'SSF_ERR_TRANSMITTER_DELIVERY_INVALID',
      );
    }
    return {
      delivery: {
        method: PUSH_METHOD,
        endpoint_url: endpointUrl,
        ...(typeof authorization === 'string' ? { authorization_header: authorization } : {}),
      },
    };
  }
  throw badRequest(
    `delivery.method must be ${PUSH_METHOD} (push) or ${POLL_METHOD} (poll)`,
    'SSF_ERR_TRANSMITTER_DELIVERY_METHOD',
  );
}

/**
 * Reads a create (POST), update (PATCH) or replace (PUT) body. Only syntax is checked here,
 * before the stream is looked up, so a broken body is a 400 and never a 404 (checklist SSF-33).
 */
export function readStreamRequest(body: unknown, mode: 'create' | 'update' | 'replace'): StreamRequest {
  const input = requireObject(body);
  const request: StreamRequest = { fields: {}, transmitterFields: {} };
  if (mode !== 'create') request.streamId = requireStreamId(input.stream_id);
  if (input.events_requested !== undefined)
    request.fields.events_requested = readEventsRequested(input.events_requested);
  if (input.delivery !== undefined) {
    const { delivery, pollEndpointUrl } = readDelivery(input.delivery);
    request.fields.delivery = delivery;
    if (pollEndpointUrl !== undefined) request.pollEndpointUrl = pollEndpointUrl;
  }
  if (input.description !== undefined) {
    if (typeof input.description !== 'string') throw badRequest('description must be a string');
    request.fields.description = input.description.slice(0, MAX_DESCRIPTION_LENGTH);
  }
  for (const name of TRANSMITTER_FIELDS) {
    if (input[name] !== undefined) request.transmitterFields[name] = input[name];
  }
  return request;
}

/** events_delivered = events_requested ∩ events_supported (SSF 1.0 §8.1.1; checklist SSF-27). */
export function eventsDelivered(
  requested: readonly string[] | undefined,
  supported: ReadonlySet<string>,
): string[] {
  return (requested ?? []).filter((uri) => supported.has(uri));
}

export interface RenderContext {
  issuer: string;
  supported: readonly string[];
  supportedSet: ReadonlySet<string>;
  /** Seconds. */
  minVerificationInterval: number;
  /** Seconds, when configured. */
  inactivityTimeout?: number;
  pollEndpoint(streamId: string): string;
}

export interface RenderedStream {
  stream_id: string;
  iss: string;
  aud: string | string[];
  events_supported: string[];
  events_requested?: string[];
  events_delivered: string[];
  delivery: { method: string; endpoint_url: string; authorization_header?: string };
  min_verification_interval: number;
  description?: string;
  inactivity_timeout?: number;
}

/**
 * The delivery as the API returns it. A provisioned stream's authorization_header came from the
 * operator's config, a secret, and is not returned; a receiver gets back the one it supplied.
 */
export function renderDelivery(
  streamId: string,
  delivery: DeliveryConfig,
  ctx: RenderContext,
  provisioned = false,
): RenderedStream['delivery'] {
  if (delivery.method === POLL_METHOD)
    return { method: POLL_METHOD, endpoint_url: ctx.pollEndpoint(streamId) };
  const { authorization_header: credential, ...rest } = delivery;
  return provisioned || credential === undefined ? rest : { ...rest, authorization_header: credential };
}

/** The stream configuration as the API returns it. */
export function renderStream(
  streamId: string,
  config: StoredStreamConfig,
  ctx: RenderContext,
): RenderedStream {
  return {
    stream_id: streamId,
    iss: ctx.issuer,
    aud: config.aud,
    events_supported: [...ctx.supported],
    ...(config.events_requested === undefined ? {} : { events_requested: [...config.events_requested] }),
    events_delivered: eventsDelivered(config.events_requested, ctx.supportedSet),
    delivery: renderDelivery(streamId, config.delivery, ctx, config.internal.provisioned === true),
    min_verification_interval: ctx.minVerificationInterval,
    ...(config.description === undefined ? {} : { description: config.description }),
    ...(ctx.inactivityTimeout === undefined ? {} : { inactivity_timeout: ctx.inactivityTimeout }),
  };
}

function sameSet(a: unknown, b: readonly string[]): boolean {
  if (!Array.isArray(a)) return false;
  const left = new Set(a);
  return left.size === new Set(b).size && b.every((v) => left.has(v));
}

function sameAudience(a: unknown, b: string | string[]): boolean {
  const list = (v: unknown) => (Array.isArray(v) ? v : [v]);
  return sameSet(list(a), list(b) as string[]);
}

/**
 * Transmitter-supplied properties in an update must equal their current values, events_delivered
 * its value before the update (checklist SSF-29); returns the first that differs.
 */
export function transmitterFieldMismatch(
  request: StreamRequest,
  current: RenderedStream,
): string | undefined {
  const t = request.transmitterFields;
  if ('iss' in t && t.iss !== current.iss) return 'iss';
  if ('aud' in t && !sameAudience(t.aud, current.aud)) return 'aud';
  if ('events_supported' in t && !sameSet(t.events_supported, current.events_supported))
    return 'events_supported';
  if ('events_delivered' in t && !sameSet(t.events_delivered, current.events_delivered))
    return 'events_delivered';
  if ('min_verification_interval' in t && t.min_verification_interval !== current.min_verification_interval) {
    return 'min_verification_interval';
  }
  if ('inactivity_timeout' in t && t.inactivity_timeout !== current.inactivity_timeout)
    return 'inactivity_timeout';
  if (
    request.pollEndpointUrl !== undefined &&
    current.delivery.method === POLL_METHOD &&
    request.fields.delivery?.method === POLL_METHOD &&
    request.pollEndpointUrl !== current.delivery.endpoint_url
  ) {
    return 'delivery.endpoint_url';
  }
  return undefined;
}

/**
 * The delivery an update asks for. A provisioned stream's authorization_header is the operator's
 * and never shown, so a receiver sending back the delivery it read omits it: it is kept while the
 * push still goes to the same endpoint (and never follows the receiver to another one).
 */
function updatedDelivery(config: StoredStreamConfig, asked: DeliveryConfig): DeliveryConfig {
  const current = config.delivery;
  if (
    config.internal.provisioned === true &&
    asked.method === PUSH_METHOD &&
    asked.authorization_header === undefined &&
    current.method === PUSH_METHOD &&
    current.authorization_header !== undefined &&
    asked.endpoint_url === current.endpoint_url
  ) {
    return { ...asked, authorization_header: current.authorization_header };
  }
  return asked;
}

/** PATCH: present receiver properties replace, absent ones stay (SSF 1.0 §8.1.1.3). */
export function mergeFields(config: StoredStreamConfig, fields: ReceiverFields): StoredStreamConfig {
  return {
    ...config,
    ...(fields.events_requested === undefined ? {} : { events_requested: fields.events_requested }),
    ...(fields.delivery === undefined ? {} : { delivery: updatedDelivery(config, fields.delivery) }),
    ...(fields.description === undefined ? {} : { description: fields.description }),
  };
}

/** PUT: the receiver properties become exactly those given; absent ones are removed (§8.1.1.4). */
export function replaceFields(config: StoredStreamConfig, fields: ReceiverFields): StoredStreamConfig {
  return {
    aud: config.aud,
    delivery: fields.delivery ? updatedDelivery(config, fields.delivery) : { method: POLL_METHOD },
    ...(fields.events_requested === undefined ? {} : { events_requested: fields.events_requested }),
    ...(fields.description === undefined ? {} : { description: fields.description }),
    internal: config.internal,
  };
}

/** The typed view of StreamRecord.config (only this module writes it). */
export function storedConfig(raw: Record<string, unknown>): StoredStreamConfig {
  return raw as unknown as StoredStreamConfig;
}
