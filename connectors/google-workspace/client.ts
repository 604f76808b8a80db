/**
 * The Admin SDK Directory API calls: users.signOut and users.patch (suspend). Google answers
 * rate limits with 403 as well as 429, and a caller's missing permission as well as a user the
 * caller may not manage: all told apart by the error reason.
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

/**
 * Reasons of a Google 403 that are about the caller, whichever user it acts on: a token without
 * the scope (`insufficientPermissions`, ErrorInfo `ACCESS_TOKEN_SCOPE_INSUFFICIENT`), the Admin
 * SDK API not enabled in the project (`accessNotConfigured`, `SERVICE_DISABLED`), credentials
 * refused (`authError`), the caller's account disabled (`accountDisabled`), or a domain policy
 * barring the app (`domainPolicy`): Google's global error reasons, and the ErrorInfo reasons of
 * its newer error format.
 */
const CALLER_REASONS = new Set([
  'insufficientPermissions',
  'accessNotConfigured',
  'authError',
  'accountDisabled',
  'domainPolicy',
  'ACCESS_TOKEN_SCOPE_INSUFFICIENT',
  'SERVICE_DISABLED',
]);

interface GoogleError {
  error?: {
    code?: number;
    message?: string;
    errors?: Array<{ reason?: string; message?: string }>;
    /** google.rpc.ErrorInfo and other details of the newer error format. */
    details?: Array<{ reason?: string }>;
  };
}

/** The `reason` strings of a list of error objects; anything else is left out. */
function reasonsIn(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list
    .map((e: unknown) =>
      typeof e === 'object' && e !== null && typeof (e as { reason?: unknown }).reason === 'string'
        ? (e as { reason: string }).reason
        : '',
    )
    .filter((r) => r.length > 0);
}

/**
 * Classifies a 403 of a call on one user by its reasons: rate limits retry; reasons about the
 * caller flag the credentials; the rest (`forbidden`, or none) refuses this user only. Google
 * answers `forbidden` for a user the delegated admin may not manage — another admin, a super
 * admin, a userKey in a domain the customer does not own — and one such user must not stop
 * every other user's delivery.
 */
export function forbidden(
  res: HttpResponse<unknown>,
  what: string,
  userKey: string,
): RetryableError | PermanentError {
  const body = (res.data !== null && typeof res.data === 'object' ? res.data : {}) as GoogleError;
  // Any shape Google did not document is a plain 403, never a TypeError retried for days.
  const reasons = [...reasonsIn(body.error?.errors), ...reasonsIn(body.error?.details)];
  const message = typeof body.error?.message === 'string' ? body.error.message : 'forbidden';
  const detail = { status: 403, reasons };
  const said = `403 ${message}${reasons.length > 0 ? `, reason ${reasons.join(', ')}` : ''}`;
  if (reasons.some((r) => RATE_REASONS.has(r))) {
    return new RetryableError(`Google rate-limited ${what}: ${message}`, {
      code: 'SSF_ERR_HTTP_RATE_LIMITED',
      detail,
    });
  }
  if (reasons.some((r) => CALLER_REASONS.has(r))) {
    return new PermanentError(
      `Google refused ${what} (${said}); the service account needs domain-wide delegation for the admin.directory.user scopes, the Admin SDK API enabled in its project, and an admin with user-management rights`,
      { code: 'SSF_ERR_HTTP_AUTH', authFailure: true, detail },
    );
  }
  return new PermanentError(
    `Google refused ${what} (${said}): the admin the service account acts for may not manage ${userKey} (another admin or a super admin, or a user outside the domains this Workspace owns); if Google refuses every user, give admin_email user-management rights`,
    { code: 'SSF_ERR_GOOGLE_USER_FORBIDDEN', detail },
  );
}

export class DirectoryClient {
  constructor(private readonly http: HttpClient) {}

  /** The status of the call; 404 (no such user) is answered, not thrown, so callers can tell it apart. */
  async #call(
    method: 'POST' | 'PATCH',
    path: string,
    body: unknown,
    what: string,
    userKey: string,
    signal: AbortSignal,
  ) {
    const res = await this.http.request({ method, url: path, body, acceptStatuses: [403, 404], signal });
    if (res.status === 403) throw forbidden(res, what, userKey);
    return res.status;
  }

  /** users.signOut: ends the user's web and device sessions and resets their sign-in cookies. */
  signOut(userKey: string, signal: AbortSignal): Promise<number> {
    const path = `/admin/directory/v1/users/${pathSegment(userKey, { escapeAll: true })}/signOut`;
    return this.#call('POST', path, undefined, `signing out ${userKey}`, userKey, signal);
  }

  /** users.patch `{suspended: true}`. */
  suspend(userKey: string, signal: AbortSignal): Promise<number> {
    const path = `/admin/directory/v1/users/${pathSegment(userKey, { escapeAll: true })}`;
    return this.#call('PATCH', path, { suspended: true }, `suspending ${userKey}`, userKey, signal);
  }
}
