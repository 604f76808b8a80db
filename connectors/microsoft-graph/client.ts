/** The Microsoft Graph calls the connector makes, with user lookups by UPN or mail. */
import { PermanentError, type HttpClient } from '../../core/plugin-api/index.ts';

/** Graph's error body (`{"error": {"code", "message"}}`). */
interface GraphErrorBody {
  error?: { code?: unknown; message?: unknown };
}

interface GraphUser {
  id?: string;
  userPrincipalName?: string;
}

export function isNotFound(err: unknown): boolean {
  return err instanceof PermanentError && err.detail?.status === 404;
}

function graphErrorCode(body: GraphErrorBody | undefined): string | undefined {
  const code = body?.error?.code;
  return typeof code === 'string' ? code.slice(0, 100) : undefined;
}

/** `: <code>: <message>` of a Graph error body, cut short; empty when it has neither. */
function graphErrorText(body: GraphErrorBody | undefined): string {
  const code = graphErrorCode(body);
  const message =
    typeof body?.error?.message === 'string'
      ? body.error.message.replace(/\s+/g, ' ').trim().slice(0, 300)
      : undefined;
  const text = [code, message].filter((part) => part !== undefined && part.length > 0).join(': ');
  return text ? `: ${text}` : '';
}

/** An OData string literal: single quotes doubled. */
function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The path of a user by UPN: `/users/{upn}`, but `/users('{upn}')` for a UPN starting with `$`,
 * which Graph answers 400 in a path segment (OData reserves `$` there for system segments; Graph
 * user-get: "remove the slash after /users and enclose the userPrincipalName in parentheses and
 * single quotes").
 */
function userPath(upn: string): string {
  if (!upn.startsWith('$')) return `/v1.0/users/${encodeURIComponent(upn)}`;
  // `$` kept as Microsoft writes it (/users('$AdeleVance@contoso.com')); the rest escaped.
  return `/v1.0/users(${encodeURIComponent(odataString(upn)).replace(/%24/g, '$')})`;
}

export class GraphClient {
  constructor(private readonly http: HttpClient) {}

  /** The object id of the user whose UPN, or else whose mail, is `email`; undefined for nobody. */
  async userIdFor(email: string, signal: AbortSignal): Promise<string | undefined> {
    try {
      const res = await this.http.get<GraphUser>(userPath(email), {
        params: { $select: 'id,userPrincipalName' },
        signal,
      });
      if (typeof res.data?.id === 'string') return res.data.id;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const res = await this.http.get<unknown>('/v1.0/users', {
      params: { $filter: `mail eq ${odataString(email)}`, $select: 'id,userPrincipalName' },
      signal,
    });
    const value = (res.data as { value?: unknown } | null | undefined)?.value;
    if (!Array.isArray(value)) {
      // Read as "nobody", a gateway's page would dead-letter a leaver as unknown; say what came.
      throw new PermanentError('Microsoft Graph answered the user search without a value list', {
        code: 'SSF_ERR_GRAPH_RESPONSE',
      });
    }
    const found = value.filter(
      (u): u is GraphUser => typeof u === 'object' && u !== null && typeof (u as GraphUser).id === 'string',
    );
    if (found.length > 1) {
      throw new PermanentError(
        `${found.length} Entra users have the mail ${email}; cannot tell which one is meant`,
        {
          code: 'SSF_ERR_OUTBOUND_AMBIGUOUS_USER',
        },
      );
    }
    return found[0]?.id;
  }

  /** Invalidates refresh tokens and session cookies (access tokens live until they expire). */
  async revokeSignInSessions(id: string, signal: AbortSignal): Promise<number> {
    const res = await this.http.post(`/v1.0/users/${id}/revokeSignInSessions`, undefined, { signal });
    return res.status;
  }

  /**
   * Sets accountEnabled to false. Its 400 and 403 are read here and thrown as refusals of this
   * change alone, never flagging the credentials: Graph answers 400 for a user synchronised from
   * on-premises Active Directory, and 403 both for an app without User.EnableDisableAccount.All
   * and for a target holding a privileged role, while revoking the same user's sessions (another
   * permission) still works.
   */
  async disable(id: string, signal: AbortSignal): Promise<number> {
    const url = `/v1.0/users/${id}`;
    const res = await this.http.request<GraphErrorBody | undefined>({
      method: 'PATCH',
      url,
      body: { accountEnabled: false },
      acceptStatuses: [400, 403],
      signal,
    });
    if (res.status === 400 || res.status === 403) {
      const code = graphErrorCode(res.data);
      throw new PermanentError(`PATCH ${url} answered ${res.status}${graphErrorText(res.data)}`, {
        code: 'SSF_ERR_GRAPH_DISABLE_REFUSED',
        detail: { status: res.status, ...(code === undefined ? {} : { graphError: code }) },
      });
    }
    return res.status;
  }

  async confirmCompromised(id: string, signal: AbortSignal): Promise<number> {
    const res = await this.http.post(
      '/v1.0/identityProtection/riskyUsers/confirmCompromised',
      { userIds: [id] },
      {
        signal,
      },
    );
    return res.status;
  }
}
