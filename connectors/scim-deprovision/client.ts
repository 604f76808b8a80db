/** SCIM 2.0 (RFC 7644) user lookup, deactivation and deletion. */
import { PermanentError, pathSegment, type HttpClient } from '../../core/plugin-api/index.ts';

export const SCIM_JSON = 'application/scim+json';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export interface ScimUser {
  id: string;
  userName?: unknown;
  emails?: unknown;
  active?: boolean;
}

interface ListResponse {
  totalResults?: number;
  Resources?: ScimUser[];
}

/** A SCIM filter string literal (RFC 7644 §3.4.2.2): double quotes, backslash escapes. */
export function scimString(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The body that deactivates a user (RFC 7644 §3.5.2.3 replace). */
export function deactivation() {
  return { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] };
}

/** A 400 whose SCIM error says the filter is not supported (RFC 7644 §3.12 scimType invalidFilter). */
function isInvalidFilter(err: unknown): boolean {
  return (
    err instanceof PermanentError && err.detail?.status === 400 && /invalidFilter/.test(String(err.message))
  );
}

function sameText(a: unknown, b: string): boolean {
  return typeof a === 'string' && a.toLowerCase() === b.toLowerCase();
}

/**
 * Whether a user the server found can be the one a filter asked for. userName and emails.value
 * compare case-insensitively (RFC 7643 §4.1.1, §4.1.2: caseExact false); a user that leaves the
 * attribute out of the answer is taken on the server's word.
 */
function fits(user: ScimUser, name: string, by: 'userName' | 'emails'): boolean {
  if (by === 'userName') return user.userName === undefined || sameText(user.userName, name);
  if (!Array.isArray(user.emails)) return user.emails === undefined;
  return user.emails.some((e) => sameText((e as { value?: unknown } | null)?.value, name));
}

/**
 * The users of a search answer, once checked against the filter. A server that ignores a filter
 * it does not support answers with other users (all of them, or a first page): acting on that
 * answer would deactivate or delete someone else, and reading it as "nobody" would report a
 * leaver handled, so it is a permanent error.
 */
function matching(found: ScimUser[], name: string, by: 'userName' | 'emails'): ScimUser[] {
  const other = found.find((user) => !fits(user, name, by));
  if (other) {
    const filter = by === 'userName' ? 'userName eq …' : 'emails[value eq …]';
    throw new PermanentError(
      `the SCIM server answered the filter ${filter} for ${name} with a user whose ${by} is not ${name} (id ${other.id}); it does not apply the filter, so nobody is deprovisioned rather than the wrong user`,
      { code: 'SSF_ERR_SCIM_FILTER_IGNORED' },
    );
  }
  return found;
}

type SearchBy = 'userName' | 'emails';

const FILTERS: Record<SearchBy, (name: string) => string> = {
  userName: (name) => `userName eq ${scimString(name)}`,
  emails: (name) => `emails[value eq ${scimString(name)}]`,
};

/** A user a search found, and which search found it (to ask the same question again). */
export interface FoundUser {
  user: ScimUser;
  name: string;
  by: SearchBy;
}

/** The `detail` of a SCIM error body (RFC 7644 §3.12), shortened, for messages. */
export function scimDetail(body: unknown): string | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const detail = (JSON.parse(body) as { detail?: unknown } | null)?.detail;
    return typeof detail === 'string' && detail.length > 0 ? detail.slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

/** The answer to a PATCH or DELETE of a user. */
export interface Written {
  status: number;
  body: unknown;
}

export class ScimClient {
  constructor(private readonly http: HttpClient) {}

  /**
   * The users a filter finds (RFC 7644 §3.4.2). An answer that is no ListResponse (an empty
   * body, a gateway's page, Resources that are not user objects) is a permanent error: read as
   * "nobody", it would report a leaver as handled while nothing happened.
   */
  async #search(filter: string, signal: AbortSignal): Promise<ScimUser[]> {
    const res = await this.http.get<unknown>('/Users', { params: { filter }, signal });
    const list = res.data as ListResponse | undefined;
    const resources = list !== null && typeof list === 'object' ? list.Resources : undefined;
    const total = list !== null && typeof list === 'object' ? list.totalResults : undefined;
    if (resources === undefined && total === 0) return [];
    if (!Array.isArray(resources) || resources.some((u) => typeof (u as ScimUser | null)?.id !== 'string')) {
      throw new PermanentError(
        'the SCIM search answered without a ListResponse of users (Resources with ids); is base_url the SCIM endpoint?',
        { code: 'SSF_ERR_SCIM_RESPONSE' },
      );
    }
    return resources as ScimUser[];
  }

  async #searchBy(by: SearchBy, name: string, signal: AbortSignal): Promise<ScimUser[]> {
    return matching(await this.#search(FILTERS[by](name), signal), name, by);
  }

  /**
   * The user whose userName is `name`, else whose email is; undefined when both searches answered
   * and neither found one. A server that refuses the email filter has not said there is nobody.
   */
  async find(name: string, signal: AbortSignal): Promise<FoundUser | undefined> {
    let by: SearchBy = 'userName';
    let found = await this.#searchBy(by, name, signal);
    if (found.length === 0) {
      // Many SCIM servers filter on userName and externalId only (RFC 7644 §3.4.2.2 lets them).
      // Read as "nobody", a refusal would record a leaver whose userName is not their email as
      // handled while they keep their access.
      by = 'emails';
      found = await this.#searchBy(by, name, signal).catch((err: unknown) => {
        if (!isInvalidFilter(err)) throw err;
        throw new PermanentError(
          `the SCIM server cannot search by email: no user has the userName ${name}, and the server refused the filter emails[value eq …] (invalidFilter), so a user whose userName is another value was not looked for; deprovision them in the app, or send the userName as the subject's email`,
          { code: 'SSF_ERR_SCIM_EMAIL_SEARCH_UNSUPPORTED', cause: err },
        );
      });
    }
    if (found.length > 1) {
      throw new PermanentError(`${found.length} SCIM users match ${name}; cannot tell which one is meant`, {
        code: 'SSF_ERR_OUTBOUND_AMBIGUOUS_USER',
      });
    }
    const user = found[0];
    return user === undefined ? undefined : { user, name, by };
  }

  /**
   * The user as the search that found it sees it now; undefined when that search no longer finds
   * them. Asked after a 404 on the user: the search is the route known to serve this token, where
   * GET /Users/{id} may 404 for the same reason the write did.
   */
  async findAgain(found: FoundUser, signal: AbortSignal): Promise<ScimUser | undefined> {
    const now = await this.#searchBy(found.by, found.name, signal);
    return now.find((user) => user.id === found.user.id);
  }

  /**
   * Deactivates a user; answers the status and body, 404 included: whether the user is gone is
   * for findAgain to tell, as a server also answers 404 for a route it does not serve or a user
   * the token's scope hides. Only the user's own 404 is answered: a 404 on the way to a token
   * (the OAuth token endpoint) is thrown.
   */
  async deactivate(id: string, signal: AbortSignal): Promise<Written> {
    const res = await this.http.request({
      method: 'PATCH',
      url: `/Users/${pathSegment(id, { escapeAll: true })}`,
      body: JSON.stringify(deactivation()),
      headers: { 'content-type': SCIM_JSON },
      responseType: 'text',
      acceptStatuses: [404],
      signal,
    });
    return { status: res.status, body: res.data };
  }

  /** Deletes a user; answers the status and body, 404 included (as deactivate). */
  async remove(id: string, signal: AbortSignal): Promise<Written> {
    const res = await this.http.request({
      method: 'DELETE',
      url: `/Users/${pathSegment(id, { escapeAll: true })}`,
      responseType: 'text',
      acceptStatuses: [404],
      signal,
    });
    return { status: res.status, body: res.data };
  }
}
