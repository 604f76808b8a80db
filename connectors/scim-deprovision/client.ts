/** SCIM 2.0 (RFC 7644) user lookup, deactivation and deletion. */
import { PermanentError, type HttpClient } from '../../core/plugin-api/index.ts';

export const SCIM_JSON = 'application/scim+json';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export interface ScimUser {
  id: string;
  userName?: string;
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

export function isNotFound(err: unknown): boolean {
  return err instanceof PermanentError && err.detail?.status === 404;
}

export class ScimClient {
  constructor(private readonly http: HttpClient) {}

  async #search(filter: string, signal: AbortSignal): Promise<ScimUser[]> {
    const res = await this.http.get<ListResponse>('/Users', { params: { filter }, signal });
    return (res.data?.Resources ?? []).filter((u) => typeof u?.id === 'string');
  }

  /** The user whose userName is `name`, else whose email is; undefined when there is none. */
  async find(name: string, signal: AbortSignal): Promise<ScimUser | undefined> {
    let found = await this.#search(`userName eq ${scimString(name)}`, signal);
    if (found.length === 0) found = await this.#search(`emails[value eq ${scimString(name)}]`, signal);
    if (found.length > 1) {
      throw new PermanentError(`${found.length} SCIM users match ${name}; cannot tell which one is meant`, {
        code: 'SSF_ERR_OUTBOUND_AMBIGUOUS_USER',
      });
    }
    return found[0];
  }

  async deactivate(id: string, signal: AbortSignal): Promise<number> {
    const res = await this.http.request({
      method: 'PATCH',
      url: `/Users/${encodeURIComponent(id)}`,
      body: JSON.stringify(deactivation()),
      headers: { 'content-type': SCIM_JSON },
      responseType: 'text',
      signal,
    });
    return res.status;
  }

  async remove(id: string, signal: AbortSignal): Promise<number> {
    const res = await this.http.request({
      method: 'DELETE',
      url: `/Users/${encodeURIComponent(id)}`,
      responseType: 'text',
      signal,
    });
    return res.status;
  }
}
