/**
 * The two Slack Web API methods the connector calls. Slack answers most failures with HTTP 200
 * and `{"ok": false, "error": "<code>"}`; the code decides the class.
 */
import { PermanentError, RetryableError, type HttpClient } from '../../core/plugin-api/index.ts';

/** Codes that mean the token cannot do this: the instance is flagged. */
const CREDENTIAL_ERRORS = new Set([
  'not_authed',
  'invalid_auth',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'not_allowed_token_type',
  'not_an_admin',
  'ekm_access_denied',
  'team_access_not_granted',
  'org_login_required',
]);
/** Codes of a transient Slack-side problem. */
const TRANSIENT_ERRORS = new Set([
  'ratelimited',
  'fatal_error',
  'internal_error',
  'service_unavailable',
  'request_timeout',
]);
export const USER_NOT_FOUND = new Set(['users_not_found', 'user_not_found']);

/** Whether Slack answered that the user (id) does not exist. */
export function isUserNotFound(err: unknown): boolean {
  const code = err instanceof PermanentError ? err.detail?.slackError : undefined;
  return typeof code === 'string' && USER_NOT_FOUND.has(code);
}

interface SlackAnswer {
  ok?: boolean;
  error?: string;
  needed?: string;
  user?: { id?: string };
}

/** The error for a Slack answer, or undefined when it is `ok: true`. */
export function slackError(
  method: string,
  answer: SlackAnswer | undefined,
): RetryableError | PermanentError | undefined {
  if (answer?.ok === true) return undefined;
  const code = typeof answer?.error === 'string' ? answer.error : 'malformed_response';
  const needed = answer?.needed ? ` (needs ${answer.needed})` : '';
  const message = `Slack ${method} failed: ${code}${needed}`;
  if (TRANSIENT_ERRORS.has(code))
    return new RetryableError(message, { code: 'SSF_ERR_SLACK_UNAVAILABLE', detail: { slackError: code } });
  if (CREDENTIAL_ERRORS.has(code)) {
    return new PermanentError(
      `${message}; the token needs an Org Owner or Admin with admin.users:write and users:read.email`,
      {
        code: 'SSF_ERR_SLACK_AUTH',
        authFailure: true,
        detail: { slackError: code },
      },
    );
  }
  return new PermanentError(message, { code: 'SSF_ERR_SLACK_REFUSED', detail: { slackError: code } });
}

export class SlackClient {
  constructor(private readonly http: HttpClient) {}

  /** users.lookupByEmail: the user id, or undefined when no user has that email. */
  async userIdFor(email: string, signal: AbortSignal): Promise<string | undefined> {
    const res = await this.http.get<SlackAnswer>('/users.lookupByEmail', { params: { email }, signal });
    if (res.data?.ok === false && USER_NOT_FOUND.has(res.data.error ?? '')) return undefined;
    const error = slackError('users.lookupByEmail', res.data);
    if (error) throw error;
    const id = res.data?.user?.id;
    if (typeof id !== 'string')
      throw slackError('users.lookupByEmail', { ok: false, error: 'malformed_response' });
    return id;
  }

  /** admin.users.session.reset: wipes the user's sessions (all, web only or mobile only). */
  async resetSessions(
    userId: string,
    sessions: 'all' | 'web' | 'mobile',
    signal: AbortSignal,
  ): Promise<number> {
    const body = {
      user_id: userId,
      ...(sessions === 'web' ? { web_only: true } : {}),
      ...(sessions === 'mobile' ? { mobile_only: true } : {}),
    };
    const res = await this.http.post<SlackAnswer>('/admin.users.session.reset', body, {
      headers: { 'content-type': 'application/json; charset=utf-8' },
      signal,
    });
    const error = slackError('admin.users.session.reset', res.data);
    if (error) throw error;
    return res.status;
  }
}
