import {
  isBridgeError,
  PermanentError,
  type HttpAuth,
  type HttpClient,
  type InboundContext,
  type Secret,
} from '../../core/plugin-api/index.ts';
import type { JamfProConfig } from './config.ts';
import { inventoryPageSchema } from './mapping.ts';

/** Inventory sections every read asks for: identity, user, serial number and group memberships. */
const SECTIONS = ['GENERAL', 'USER_AND_LOCATION', 'HARDWARE', 'GROUP_MEMBERSHIPS']
  .map((s) => `section=${s}`)
  .join('&');

function isNotFound(err: unknown): boolean {
  return isBridgeError(err) && err.errorClass === 'permanent' && err.detail?.['status'] === 404;
}

/**
 * How the connector signs in to the Jamf Pro API: an API client's OAuth token from
 * /api/oauth/token, or an account's bearer token from /api/v1/auth/token (Basic credentials);
 * either is cached and renewed by the core client. The config allows exactly one of the two.
 */
export function jamfApiAuth(config: JamfProConfig, base: string): HttpAuth {
  if (config.username !== undefined && config.password !== undefined) {
    return {
      type: 'basic_session_token',
      tokenUrl: `${base}/api/v1/auth/token`,
      username: config.username,
      password: config.password,
    };
  }
  return {
    type: 'oauth2_client_credentials',
    tokenUrl: `${base}/api/oauth/token`,
    clientId: config.client_id as string,
    clientSecret: config.client_secret as Secret,
    clientAuth: 'body',
  };
}

/** The Jamf Pro API, read with the configured credentials. */
export class JamfClient {
  readonly #http: HttpClient;

  constructor(ctx: InboundContext<unknown>, config: JamfProConfig) {
    const base = config.url.replace(/\/+$/, '');
    this.#http = ctx.http.create({ baseURL: base, auth: jamfApiAuth(config, base) });
  }

  /** One computer with its identity and group memberships, or null when Jamf Pro no longer has it. */
  async computer(id: string, signal: AbortSignal): Promise<unknown> {
    try {
      const res = await this.#http.get(`/api/v1/computers-inventory/${encodeURIComponent(id)}?${SECTIONS}`, {
        signal,
      });
      return res.data;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** A page of the inventory, sorted by id so pages do not shift while computers report in. */
  async inventoryPage(
    page: number,
    pageSize: number,
    signal: AbortSignal,
  ): Promise<{ totalCount: number; results: unknown[] }> {
    const res = await this.#http.get(
      `/api/v1/computers-inventory?${SECTIONS}&page=${page}&page-size=${pageSize}&sort=id%3Aasc`,
      { signal },
    );
    const parsed = inventoryPageSchema.safeParse(res.data);
    if (!parsed.success) {
      throw new PermanentError('Jamf Pro answered the inventory without totalCount and results', {
        code: 'SSF_ERR_JAMF_PAYLOAD',
      });
    }
    return parsed.data;
  }

  async probe(signal: AbortSignal): Promise<void> {
    await this.#http.get('/api/v1/computers-inventory?section=GENERAL&page=0&page-size=1', { signal });
  }
}
