/**
 * RFC 8935 push of one signed SET, shared by the connectors that deliver SETs as they are:
 * `POST` with `Content-Type: application/secevent+jwt` and `Accept: application/json`, the
 * compact JWS as the body, and the receiver's answer classified by classifyPushResponse.
 */
import {
  classifyPushResponse,
  type DeliveryReceipt,
  type HttpClient,
  type SignedSet,
} from '../../core/plugin-api/index.ts';

export const SET_CONTENT_TYPE = 'application/secevent+jwt';

/**
 * Statuses whose bodies the push classification reads itself: RFC 8935 error bodies come with
 * 400 (and some receivers send them with 401/403), and Okta's 429 carries its reset time only in
 * X-Rate-Limit-Reset. 5xx and network failures keep the HTTP client's own classification.
 */
const READ_BODIES_OF = [400, 401, 403, 429];

/** The endpoint without query or fragment, for messages (a query may hold a credential). */
export function endpointLabel(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

export interface PushOptions {
  /** Extra request headers, e.g. a static Authorization header the receiver issued. */
  headers?: Record<string, string>;
  signal: AbortSignal;
  /** Retries of a SET the receiver refuses with `invalid_key`; 3 by default, as the transmitter's. */
  invalidKeyRetries?: number;
  /** Wait before each of those retries; 1 min by default, as the transmitter's. */
  invalidKeyRetryAfterMs?: number;
}

/**
 * POSTs the SET; resolves when the receiver accepted it, throws the classified refusal otherwise.
 * An `invalid_key` refusal is retryable for the SET's first attempts (`set.attempt`): a receiver
 * may hold our JWKS from before a key rotation and fetch it again (RFC 8935 §2.4).
 */
export async function pushSet(
  client: HttpClient,
  url: string,
  set: SignedSet,
  options: PushOptions,
): Promise<DeliveryReceipt> {
  const res = await client.request<string>({
    method: 'POST',
    url,
    body: set.jwt,
    headers: { 'content-type': SET_CONTENT_TYPE, accept: 'application/json', ...options.headers },
    responseType: 'text',
    acceptStatuses: READ_BODIES_OF,
    signal: options.signal,
  });
  const target = `POST ${endpointLabel(url)}`;
  const error = classifyPushResponse(
    { status: res.status, headers: res.headers, body: res.data },
    {
      target,
      attempt: set.attempt,
      ...(options.invalidKeyRetries === undefined ? {} : { invalidKeyRetries: options.invalidKeyRetries }),
      ...(options.invalidKeyRetryAfterMs === undefined
        ? {}
        : { invalidKeyRetryAfterMs: options.invalidKeyRetryAfterMs }),
    },
  );
  if (error) throw error;
  return { status: res.status, detail: `${target} accepted the SET (${res.status})` };
}
