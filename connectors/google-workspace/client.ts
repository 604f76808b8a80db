/**
 * The Admin SDK Directory API calls: users.signOut and users.patch (suspend). Google answers
 * rate limits with 403 as well as 429, told apart from permission errors by the error reason.
 */
import {
  pathSegment,
  PermanentError,
  RetryableError,
  type HttpClient,
  type HttpResponse,
} from '../../core/plugin-api/index.ts';

/** Reasons of a Google 403 that mean "slow down", not "not allowed". */
const RATE_REASONS = new Set([
  'rateLimitExceeded',
  'userRateLimitExceeded',
  'quotaExceeded',
  'dailyLimitExceeded',
]);

interface GoogleError {
  error?: { code?: number; message?: string; errors?: Array<{ reason?: string; message?: string }> };
}

/** Classifies a 403 by its reason: rate limits retry, the rest is a permission problem. */
export function forbidden(res: HttpResponse<unknown>, what: string): RetryableError | PermanentError {
  const body = (res.data !== null && typeof res.data === 'object' ? res.data : {}) as GoogleError;
  const errors: unknown[] = Array.isArray(body.error?.errors) ? body.error.errors : [];
  // Any shape Google did not document is a plain 403, never a TypeError retried for days.
  const reasons = errors.map((e) =>
    typeof e === 'object' && e !== null && typeof (e as { reason?: unknown }).reason === 'string'
      ? (e as { reason: string }).reason
      : '',
  );
  const message = typeof body.error?.message === 'string' ? body.error.message : 'forbidden';
  if (reasons.some((r) => RATE_REASONS.has(r))) {
    return new RetryableError(`Google rate-limited ${what}: ${message}`, {
      code: 'SSF_ERR_HTTP_RATE_LIMITED',
      detail: { status: 403, reasons },
    });
  }
  return new PermanentError(
    `Google refused ${what} (403 ${message}); the service account needs domain-wide delegation for the admin.directory.user scopes and an admin with user-management rights`,
    { code: 'SSF_ERR_HTTP_AUTH', authFailure: true, detail: { status: 403, reasons } },
  );
}

export class DirectoryClient {
  constructor(private readonly http: HttpClient) {}

  /** The status of the call; 404 (no such user) is answered, not thrown, so callers can tell it apart. */
  async #call(method: 'POST' | 'PATCH', path: string, body: unknown, what: string, signal: AbortSignal) {
    const res = await this.http.request({ method, url: path, body, acceptStatuses: [403, 404], signal });
    if (res.status === 403) throw forbidden(res, what);
    return res.status;
  }

  /** users.signOut: ends the user's web and device sessions and resets their sign-in cookies. */
  signOut(userKey: string, signal: AbortSignal): Promise<number> {
    const path = `/admin/directory/v1/users/${pathSegment(userKey, { escapeAll: true })}/signOut`;
    return this.#call('POST', path, undefined, `signing out ${userKey}`, signal);
  }

  /** users.patch `{suspended: true}`. */
  suspend(userKey: string, signal: AbortSignal): Promise<number> {
    const path = `/admin/directory/v1/users/${pathSegment(userKey, { escapeAll: true })}`;
    return this.#call('PATCH', path, { suspended: true }, `suspending ${userKey}`, signal);
  }
}
