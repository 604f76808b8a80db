/** Config pieces the outbound connectors share: URLs, audiences, OAuth clients, timeouts. */
import { duration, secret, z, type HttpAuth } from '../../core/plugin-api/index.ts';

/**
 * An absolute http(s) URL without a user name or password: requests are built from its host and
 * path, so credentials written into it would silently never be sent (and would show in logs).
 */
function absoluteHttpUrl() {
  return z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' }).refine(
    (url) => {
      if (!URL.canParse(url)) return true;
      const parsed = new URL(url);
      return parsed.username === '' && parsed.password === '';
    },
    {
      error:
        'must not hold a user name or password: they are never sent; give credentials in the connector’s own settings',
    },
  );
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export const CLEAR_TEXT =
  'must be an https URL (the credentials would travel in clear text over http); plain http only for the local machine';

/**
 * Whether credentials may go to `url`: https, or plain http to the local machine (a proxy or
 * test double on the same host), as for the inbound connectors' vendor URLs. Not a URL at all
 * is left to the URL check.
 */
export function keepsCredentials(url: string): boolean {
  if (!URL.canParse(url)) return true;
  const parsed = new URL(url);
  return parsed.protocol === 'https:' || LOCAL_HOSTS.has(parsed.hostname);
}

/**
 * A base URL that paths are joined to (`base_url`, `org_url`, `graph_url`, `api_url` …): the
 * trailing slashes of its path are dropped so `${base}/Users` has one slash. A query or fragment
 * is refused: a path joined to `https://app.example.com/scim/v2?tenant=a` lands inside the query
 * (`?tenant=a/Users`), so no request would reach the API.
 */
export function baseUrl(description: string, options: { credentials?: boolean } = {}) {
  return absoluteHttpUrl()
    .refine((url) => !options.credentials || keepsCredentials(url), { error: CLEAR_TEXT })
    .refine((url) => !/[?#]/.test(url), {
      error: 'must not have a query or fragment: paths such as /Users are joined to it',
    })
    .transform((url) => url.replace(/\/+$/, ''))
    .meta({ description });
}

/**
 * A service's own origin (`org_url`, `graph_url`): scheme, host and port, to which the API's
 * full paths (`/api/v1/users`, `/v1.0/users`) and token endpoints or scopes are joined. A path
 * copied along (`…/v1.0`, `…/oauth2/default`, an admin console page) is refused: every request
 * would miss the API, and a Graph scope such as `https://graph.microsoft.com/v1.0/.default` is
 * refused by Entra.
 */
export function originUrl(description: string, example: string) {
  return absoluteHttpUrl()
    .refine(keepsCredentials, { error: CLEAR_TEXT })
    .refine((url) => !URL.canParse(url) || (!/[?#]/.test(url) && /^\/*$/.test(new URL(url).pathname)), {
      error: `must be the origin alone, e.g. ${example}, with no path, query or fragment`,
    })
    .transform((url) => new URL(url).origin)
    .meta({ description });
}

/** Okta's admin console domains; the APIs are served on the org's own domain, without -admin. */
const OKTA_ADMIN_HOST = /-admin\.(okta|oktapreview|okta-emea|okta-gov)\.com$/i;

/** An Okta org URL: its origin, not the admin console's `-admin` domain. */
export function oktaOrgUrl(description: string) {
  return originUrl(description, 'https://example.okta.com').refine(
    (origin) => !OKTA_ADMIN_HOST.test(new URL(origin).hostname),
    {
      error:
        'is the admin console’s domain; use the org’s domain without -admin, e.g. https://example.okta.com',
    },
  );
}

/**
 * A URL requests go to as they are (a webhook `url`, a `token_url`): kept exactly as configured,
 * since `/hook/` and `/hook` may be different endpoints, and a query may hold a key that ends
 * in a slash.
 */
export function endpointUrl(description: string) {
  return absoluteHttpUrl().meta({ description });
}

/**
 * An RFC 8935 push endpoint (`endpoint_url`): https, plain http only for the local machine, with
 * or without credentials, since the SETs themselves are personal data about users and devices.
 */
export function pushEndpointUrl(description: string) {
  return endpointUrl(description).refine(keepsCredentials, {
    // RFC 8935 §1: SETs are delivered over TLS.
    error: 'must be an https URL (RFC 8935 delivers SETs over TLS); plain http only for the local machine',
  });
}

export function audience(description: string) {
  return z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).meta({ description });
}

export function requestTimeout(fallbackMs: number) {
  return duration('Deadline of one request to the target, e.g. 10s.', { min: 100, max: 600_000 }).default(
    fallbackMs,
  );
}

/** OAuth 2.0 client credentials (RFC 6749 §4.4) with a client secret. */
/** `dpop` of an OAuth client's config: how its tokens are bound to a key of the bridge's. */
export function dpopSetting() {
  return z.boolean().optional().meta({
    description:
      'DPoP (RFC 9449): true binds every token to a key of the bridge’s and proves it on each request; false never; unset, used once the token endpoint asks for it.',
  });
}

export const oauthClientSchema = z.strictObject({
  token_url: endpointUrl('Token endpoint of the authorization server.').refine(keepsCredentials, {
    error: CLEAR_TEXT,
  }),
  client_id: z.string().min(1).meta({ description: 'OAuth client id.' }),
  client_secret: secret('OAuth client secret.'),
  scope: z.string().min(1).optional().meta({ description: 'Space-separated scopes to request.' }),
  audience: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'Audience to request, for authorization servers that take one.' }),
  client_auth: z.enum(['basic', 'body']).default('basic').meta({
    description: '`basic`: client id and secret as HTTP Basic credentials; `body`: as form fields.',
  }),
  dpop: dpopSetting(),
});

export type OauthClientConfig = z.output<typeof oauthClientSchema>;

export function oauthAuth(oauth: OauthClientConfig): HttpAuth {
  return {
    type: 'oauth2_client_credentials',
    tokenUrl: oauth.token_url,
    clientId: oauth.client_id,
    clientSecret: oauth.client_secret,
    clientAuth: oauth.client_auth,
    ...(oauth.scope ? { scope: oauth.scope } : {}),
    ...(oauth.audience ? { audience: oauth.audience } : {}),
    ...(oauth.dpop === undefined ? {} : { dpop: oauth.dpop }),
  };
}
