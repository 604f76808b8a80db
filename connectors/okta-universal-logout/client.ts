/**
 * The Okta APIs Universal Logout needs: the Users API to turn an email into an Okta user id (and,
 * for leavers, to deactivate them), and Global Token Revocation. Okta's 429 answers announce the end of the rate-limit window
 * only in X-Rate-Limit-Reset, so those answers are read here and turned into waits.
 */
import {
  parseRateLimitReset,
  parseRetryAfter,
  pathSegment,
  PermanentError,
  RetryableError,
  type HttpClient,
  type HttpResponse,
} from '../../core/plugin-api/index.ts';

const MAX_WAIT_MS = 60 * 60 * 1000;

export type SubId = { format: 'opaque'; id: string } | { format: 'iss_sub'; iss: string; sub: string };

interface OktaUser {
  id: string;
  status?: string;
  /** The status an asynchronous lifecycle operation is taking the user to. */
  transitioningToStatus?: string;
  profile?: { login?: string; email?: string };
}

/** Okta's E0000038, "This operation is not allowed in the user's current status." */
const NOT_IN_CURRENT_STATUS = 'E0000038';

function deactivated(user: OktaUser | undefined): boolean {
  return user?.status === 'DEPROVISIONED' || user?.transitioningToStatus === 'DEPROVISIONED';
}

/** The errorCode of an Okta error body (`{"errorCode": "E0000038", …}`), when it is one. */
function oktaErrorCode(body: unknown): string | undefined {
  try {
    const code = (JSON.parse(String(body)) as { errorCode?: unknown } | null)?.errorCode;
    return typeof code === 'string' && /^E\d{7}$/.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds until Okta's rate-limit window resets (Retry-After wins when present), read as the
 * core HTTP client reads them: at most an hour, a reset already past is 0 (the delivery's backoff
 * is the floor), and a value that is no epoch time is undefined, so the core backoff applies.
 */
export function oktaRetryAfterMs(headers: Record<string, string>, nowMs: number): number | undefined {
  // Seconds or an HTTP date (RFC 9110 §10.2.3).
  return (
    parseRetryAfter(headers['retry-after'], nowMs, MAX_WAIT_MS) ??
    parseRateLimitReset(headers['x-rate-limit-reset'], nowMs, MAX_WAIT_MS)
  );
}

function throwIfLimited(res: HttpResponse<unknown>, what: string, nowMs: number): void {
  if (res.status !== 429) return;
  const retryAfterMs = oktaRetryAfterMs(res.headers, nowMs);
  throw new RetryableError(`Okta rate-limited ${what} (429)`, {
    code: 'SSF_ERR_HTTP_RATE_LIMITED',
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    detail: { status: 429, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
  });
}

/**
 * Whether `value` goes into a path segment as it is. Okta decodes the path before comparing it
 * with a DPoP proof's `htu`, which names the path as sent: a login the segment escapes (`#`, `%`,
 * `/`, `?`, a space, non-ASCII …) fails the proof. pathSegment keeps "@" and "+" as they are.
 */
function pathSafe(value: string): boolean {
  try {
    return pathSegment(value) === value;
  } catch {
    return false;
  }
}

/**
 * A string in Okta's search syntax (a SCIM filter): quotes and backslashes escaped, never dropped,
 * which would search for, and act on, another mailbox.
 */
function searchString(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

export function isStatus(err: unknown, status: number): boolean {
  return err instanceof PermanentError && err.detail?.status === status;
}

export class OktaClient {
  constructor(
    private readonly http: HttpClient,
    private readonly now: () => number,
  ) {}

  /**
   * The Okta user id for an email: first as a login (`GET /api/v1/users/{login}`), then by
   * primary email (`search=profile.email eq "…"`). A login the path would escape is looked up
   * with one search instead (`profile.login eq "…" or profile.email eq "…"`): the query is no
   * part of a DPoP proof's `htu`. Undefined when nobody matches.
   */
  async userIdFor(email: string, signal: AbortSignal): Promise<string | undefined> {
    if (!pathSafe(email)) {
      const quoted = searchString(email);
      const found = await this.#search(`profile.login eq ${quoted} or profile.email eq ${quoted}`, signal);
      // Logins are unique in an org; a login match wins, as the lookup by login does.
      const byLogin = found.filter((u) => u.profile?.login?.toLowerCase() === email.toLowerCase());
      return byLogin.length === 1 ? byLogin[0]!.id : this.#onlyOne(found, email);
    }
    try {
      const res = await this.http.get<OktaUser>(`/api/v1/users/${pathSegment(email)}`, {
        acceptStatuses: [429],
        signal,
      });
      throwIfLimited(res, 'the user lookup', this.now());
      if (typeof res.data?.id === 'string') return res.data.id;
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
    return this.#onlyOne(await this.#search(`profile.email eq ${searchString(email)}`, signal), email);
  }

  async #search(search: string, signal: AbortSignal): Promise<OktaUser[]> {
    const res = await this.http.get<OktaUser[]>('/api/v1/users', {
      params: { search },
      acceptStatuses: [429],
      signal,
    });
    throwIfLimited(res, 'the user search', this.now());
    return Array.isArray(res.data) ? res.data : [];
  }

  #onlyOne(found: OktaUser[], email: string): string | undefined {
    if (found.length > 1) {
      throw new PermanentError(
        `${found.length} Okta users have the email ${email}; cannot tell which one to log out`,
        {
          code: 'SSF_ERR_OUTBOUND_AMBIGUOUS_USER',
        },
      );
    }
    return found[0]?.id;
  }

  /** POST /oauth2/v1/global-token-revocation: ends the user's Okta sessions and revokes their tokens. */
  async revoke(subId: SubId, signal: AbortSignal): Promise<number> {
    const res = await this.http.post(
      '/oauth2/v1/global-token-revocation',
      { sub_id: subId },
      {
        acceptStatuses: [429],
        responseType: 'text',
        signal,
      },
    );
    throwIfLimited(res, 'the token revocation', this.now());
    return res.status;
  }

  async #user(userId: string, signal: AbortSignal): Promise<OktaUser | undefined> {
    const res = await this.http.get<OktaUser>(`/api/v1/users/${pathSegment(userId)}`, {
      acceptStatuses: [429],
      signal,
    });
    throwIfLimited(res, 'the user lookup', this.now());
    return res.data;
  }

  /**
   * Deactivates a user (POST /api/v1/users/{id}/lifecycle/deactivate): Okta ends their access
   * to every app and deprovisions them. A user deactivated already, or being deactivated, is
   * left as is, so a redelivery does not fail on the status it left behind. Okta answers a
   * deactivation of a deprovisioned user 403 E0000038: when the user turns out deactivated by
   * then (another deactivation came first), that is the outcome asked for, not a credential
   * problem. Returns whether it deactivated now.
   */
  async deactivate(userId: string, signal: AbortSignal): Promise<boolean> {
    if (deactivated(await this.#user(userId, signal))) return false;
    const res = await this.http.post<string>(
      `/api/v1/users/${pathSegment(userId)}/lifecycle/deactivate`,
      undefined,
      {
        params: { sendEmail: 'false' },
        acceptStatuses: [403, 429],
        responseType: 'text',
        signal,
      },
    );
    throwIfLimited(res, 'the deactivation', this.now());
    if (res.status !== 403) return true;
    const code = oktaErrorCode(res.data);
    if (code === NOT_IN_CURRENT_STATUS && deactivated(await this.#user(userId, signal))) return false;
    throw new PermanentError(
      `Okta refused the deactivation (403${code ? ` ${code}` : ''}); check the app's okta.users.manage grant and its admin role`,
      {
        code: 'SSF_ERR_HTTP_AUTH',
        authFailure: true,
        detail: { status: 403, ...(code ? { errorCode: code } : {}) },
      },
    );
  }
}
