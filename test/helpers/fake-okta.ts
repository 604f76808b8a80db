/**
 * A fake Okta org on loopback, built from Okta's management API documentation (vendor-formats
 * §3.1–3.2): Security Events Providers, the SSF receiver at /security/api/v1/security-events,
 * Global Token Revocation, the Users API, and the org authorization server's client-credentials
 * grant with private_key_jwt, and DPoP for apps that require it (Okta's default for API Services
 * apps): the token endpoint's `invalid_dpop_proof` and `use_dpop_nonce` answers, DPoP-bound tokens,
 * and proofs checked on every API call against the path as Okta decodes it. The receiver checks a SET the way Okta does — the provider is
 * found by `iss`, the key by `kid` in the JWKS fetched from the provider's jwks_url, `typ` must
 * be secevent+jwt — and then enforces Okta's six event types and their required fields,
 * answering 400 `{err, description}` with Okta's camelCase field paths.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  calculateJwkThumbprint,
  compactVerify,
  decodeProtectedHeader,
  importJWK,
  jwtVerify,
  type JWK,
} from 'jose';
import { FakeApi, type FakeRequest, type FakeResponse } from './fake-api.ts';
import { BRIDGE_ISSUER, bridgeJwks } from './outbound.ts';

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const OKTA = 'https://schemas.okta.com/secevent/okta/event-type/';

/** Okta's six event types and the name its error descriptions give each. */
const OKTA_EVENTS: Record<string, string> = {
  [`${CAEP}session-revoked`]: 'mediationSessionRevokedEvent',
  [`${CAEP}device-compliance-change`]: 'mediationDeviceComplianceChangeEvent',
  [`${RISC}identifier-changed`]: 'mediationIdentifierChangedEvent',
  [`${OKTA}user-risk-change`]: 'userRiskChangeEvent',
  [`${OKTA}device-risk-change`]: 'deviceRiskChangeEvent',
  [`${OKTA}ip-change`]: 'ipChangeEvent',
};
const REASON_REQUIRED = new Set([
  `${CAEP}session-revoked`,
  `${CAEP}device-compliance-change`,
  `${OKTA}user-risk-change`,
  `${OKTA}device-risk-change`,
  `${OKTA}ip-change`,
]);
const LEVELS = ['low', 'medium', 'high', 'secure', 'none'];
const STATUSES = ['compliant', 'not-compliant'];
const ENTITIES = ['admin', 'user', 'policy', 'system'];

export interface Provider {
  id: string;
  name: string;
  type: string;
  status: 'ACTIVE' | 'INACTIVE';
  settings: { issuer: string; jwks_url: string; well_known_url?: string };
}

export interface OktaUser {
  id: string;
  status: string;
  profile: { login: string; email: string; firstName: string; lastName: string };
}

export interface AcceptedSet {
  provider: string;
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

export interface OAuthClient {
  clientId: string;
  publicJwk: JWK;
  scopes: string[];
  /** "Require Demonstrating Proof of Possession (DPoP) header in token requests". */
  requireDpop?: boolean;
}

/** An access token the org issued: its scopes, and the DPoP key thumbprint it is bound to. */
interface IssuedToken {
  scopes: string[];
  jkt?: string;
}

/** A DPoP proof's key thumbprint and claims, or what Okta says is wrong with it. */
async function readProof(
  proof: string | undefined,
): Promise<{ jkt: string; claims: Record<string, unknown> } | { problem: string }> {
  if (proof === undefined) return { problem: 'The DPoP proof JWT header is missing.' };
  try {
    const jwk = decodeProtectedHeader(proof).jwk as JWK;
    const { payload } = await jwtVerify(proof, await importJWK(jwk, 'ES256'), { typ: 'dpop+jwt' });
    return { jkt: await calculateJwkThumbprint(jwk), claims: payload };
  } catch {
    return { problem: 'The DPoP proof JWT is invalid.' };
  }
}

const camel = (snake: string) => snake.replace(/[_-]([a-z])/g, (_, c: string) => c.toUpperCase());

function oktaError(status: number, code: string, summary: string, causes: string[] = []): FakeResponse {
  return {
    status,
    body: {
      errorCode: code,
      errorSummary: summary,
      errorLink: code,
      errorId: `oae${randomUUID().replace(/-/g, '').slice(0, 20)}`,
      errorCauses: causes.map((errorSummary) => ({ errorSummary })),
    },
  };
}

function setError(err: string, description: string): FakeResponse {
  return { status: 400, body: { err, description } };
}

function decodeSegment(segment: string | undefined): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Field problems of one event, as Okta words them; empty when Okta accepts it. */
function eventProblems(type: string, event: Record<string, unknown>): string[] {
  const name = OKTA_EVENTS[type] as string;
  const at = (field: string) => `events.${name}.${camel(field)}`;
  const blank = (field: string) => `${at(field)}: The field cannot be left blank`;
  const problems: string[] = [];
  if (typeof event.event_timestamp !== 'number') problems.push(blank('event_timestamp'));
  const subject = event.subject;
  if (!isObject(subject)) problems.push(blank('subject'));
  else {
    if (!subject.user && !subject.device) problems.push(`${at('subject')}: A user or a device is required`);
    for (const [member, value] of Object.entries(subject)) {
      if (member !== 'user' && member !== 'device')
        problems.push(`${at('subject')}.${member}: Unknown property`);
      else if (!isObject(value) || typeof value.format !== 'string' || value.format === 'complex') {
        problems.push(`${at('subject')}.${member}: A subject identifier with a format is required`);
      } else if (value.format === 'email' && typeof value.email !== 'string') {
        problems.push(`${at('subject')}.${member}.email: The field cannot be left blank`);
      }
    }
    if (type === `${OKTA}user-risk-change` && !subject.user)
      problems.push(`${at('subject')}.user: The field cannot be left blank`);
    if (type === `${OKTA}device-risk-change` && !subject.device) {
      problems.push(`${at('subject')}.device: The field cannot be left blank`);
    }
  }
  if (event.initiating_entity !== undefined && !ENTITIES.includes(String(event.initiating_entity))) {
    problems.push(`${at('initiating_entity')}: Does not match allowed values: ${ENTITIES.join(', ')}`);
  }
  for (const key of ['reason_admin', 'reason_user']) {
    const reason = event[key];
    if (reason !== undefined && (!isObject(reason) || typeof reason.en !== 'string')) {
      problems.push(`${at(key)}.en: The field cannot be left blank`);
    }
  }
  if (REASON_REQUIRED.has(type) && event.reason_admin === undefined && event.reason_user === undefined) {
    problems.push(`${at('reason_admin')}: Either reasonAdmin or reasonUser is required`);
  }
  const oneOf = (field: string, allowed: string[]) => {
    const value = event[field];
    if (value === undefined) problems.push(blank(field));
    else if (!allowed.includes(String(value))) {
      problems.push(`${at(field)}: Does not match allowed values: ${allowed.join(', ')}`);
    }
  };
  if (type === `${CAEP}device-compliance-change`) {
    oneOf('current_status', STATUSES);
    oneOf('previous_status', STATUSES);
  }
  if (type === `${OKTA}user-risk-change` || type === `${OKTA}device-risk-change`) {
    oneOf('current_level', LEVELS);
    oneOf('previous_level', LEVELS);
  }
  if (type === `${OKTA}ip-change`) {
    for (const field of ['current_ip_address', 'previous_ip_address']) {
      if (typeof event[field] !== 'string') problems.push(blank(field));
    }
  }
  return problems;
}

export class FakeOkta {
  readonly api: FakeApi;
  readonly providers = new Map<string, Provider>();
  readonly accepted: AcceptedSet[] = [];
  readonly users: OktaUser[] = [];
  /** The sub_id of every Global Token Revocation that succeeded. */
  readonly revocations: Array<Record<string, unknown>> = [];
  /** Every user deactivation that succeeded, with its sendEmail parameter. */
  readonly deactivations: Array<{ id: string; sendEmail: string | undefined }> = [];
  /** The SSWS API token the org accepts. */
  apiToken = 'okta-api-token-00aBcD';
  readonly clients: OAuthClient[] = [];
  readonly #tokens = new Map<string, IssuedToken>();
  #issued = 0;
  /** The nonce the token endpoint wants in DPoP proofs; Okta rotates it. */
  dpopNonce = `okta-nonce-${randomUUID().slice(0, 8)}`;

  constructor() {
    this.api = new FakeApi((req) => this.#route(req));
  }

  get orgUrl(): string {
    return this.api.url;
  }

  async start(): Promise<this> {
    await this.api.start();
    return this;
  }

  close(): Promise<void> {
    return this.api.close();
  }

  /** Registers a provider directly, as an admin would in the console. */
  addProvider(settings: Provider['settings'], status: Provider['status'] = 'ACTIVE'): Provider {
    const provider: Provider = {
      id: `sse${randomUUID().replace(/-/g, '').slice(0, 17)}`,
      name: 'ssf-bridge',
      type: 'okta',
      status,
      settings,
    };
    this.providers.set(provider.id, provider);
    return provider;
  }

  addUser(login: string, email = login): OktaUser {
    const user: OktaUser = {
      id: `00u${randomUUID().replace(/-/g, '').slice(0, 17)}`,
      status: 'ACTIVE',
      profile: { login, email, firstName: 'Test', lastName: 'User' },
    };
    this.users.push(user);
    return user;
  }

  #providerJson(p: Provider) {
    const self = `${this.orgUrl}/api/v1/security-events-providers/${p.id}`;
    return {
      ...p,
      _links: {
        self: { href: self, hints: { allow: ['GET', 'PUT', 'DELETE'] } },
        [p.status === 'ACTIVE' ? 'deactivate' : 'activate']: {
          href: `${self}/lifecycle/${p.status === 'ACTIVE' ? 'deactivate' : 'activate'}`,
          hints: { allow: ['POST'] },
        },
      },
    };
  }

  /**
   * The scopes of the request's credentials; undefined when it has none Okta accepts, or a
   * refusal of a DPoP proof that does not fit the request.
   */
  async #granted(req: FakeRequest): Promise<string[] | FakeResponse | undefined> {
    const authorization = req.headers['authorization'] ?? '';
    if (authorization === `SSWS ${this.apiToken}`) return ['*'];
    const [scheme, value = ''] = authorization.split(' ');
    const token = this.#tokens.get(value);
    if (!token) return undefined;
    // A DPoP-bound token is refused as a bearer; a bearer token is not presented as DPoP.
    if ((scheme === 'DPoP') !== (token.jkt !== undefined) || (scheme !== 'DPoP' && scheme !== 'Bearer')) {
      return undefined;
    }
    if (token.jkt === undefined) return token.scopes;
    const proof = await readProof(req.headers['dpop']);
    const refuse = (description: string): FakeResponse => ({
      status: 400,
      headers: { 'www-authenticate': `DPoP error="invalid_dpop_proof", error_description="${description}"` },
      body: { error: 'invalid_dpop_proof', error_description: description },
    });
    if ('problem' in proof) return refuse(proof.problem);
    // Okta compares htu with the request's path decoded (an encoded "@" in htu does not match).
    const htu = `${this.orgUrl}${decodeURIComponent(req.path)}`;
    if (proof.claims.htu !== htu) return refuse("'htu' claim in the DPoP proof JWT is invalid.");
    if (proof.claims.htm !== req.method) return refuse("'htm' claim in the DPoP proof JWT is invalid.");
    if (proof.claims.ath !== createHash('sha256').update(value).digest('base64url')) {
      return refuse("'ath' claim in the DPoP proof JWT is invalid.");
    }
    if (proof.jkt !== token.jkt)
      return refuse('The DPoP proof JWT key does not match the access token binding.');
    return token.scopes;
  }

  async #authorize(req: FakeRequest, scope: string): Promise<FakeResponse | undefined> {
    const granted = await this.#granted(req);
    if (!granted) return oktaError(401, 'E0000011', 'Invalid token provided');
    if (!Array.isArray(granted)) return granted;
    if (!granted.includes('*') && !granted.includes(scope)) {
      return {
        ...oktaError(403, 'E0000006', 'You do not have permission to perform the requested action'),
        headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="${scope}"` },
      };
    }
    return undefined;
  }

  async #route(req: FakeRequest): Promise<FakeResponse> {
    const { method, path } = req;
    if (method === 'POST' && path === '/security/api/v1/security-events') return this.#receive(req);
    if (method === 'POST' && path === '/oauth2/v1/token') return this.#token(req);
    if (method === 'POST' && path === '/oauth2/v1/global-token-revocation') return this.#revoke(req);
    if (path.startsWith('/api/v1/security-events-providers')) return this.#providersApi(req);
    const lifecycle = /^\/api\/v1\/users\/([^/]+)\/lifecycle\/deactivate$/.exec(path);
    if (method === 'POST' && lifecycle) return this.#deactivate(req, decodeURIComponent(lifecycle[1]!));
    if (method === 'GET' && path.startsWith('/api/v1/users')) return this.#usersApi(req);
    return oktaError(404, 'E0000022', 'The endpoint does not support the provided HTTP method');
  }

  async #providersApi(req: FakeRequest): Promise<FakeResponse> {
    const read = req.method === 'GET';
    const denied = await this.#authorize(
      req,
      read ? 'okta.securityEventsProviders.read' : 'okta.securityEventsProviders.manage',
    );
    if (denied) return denied;
    const [, id, , action] = req.path.slice('/api/v1/security-events-providers'.length).split('/');
    if (!id) {
      if (read) return { status: 200, body: [...this.providers.values()].map((p) => this.#providerJson(p)) };
      if (req.method === 'POST') return this.#createProvider(req);
    }
    const provider = id ? this.providers.get(id) : undefined;
    if (!provider)
      return oktaError(
        404,
        'E0000007',
        `Not found: Resource not found: ${id ?? ''} (SecurityEventsProvider)`,
      );
    if (read && !action) return { status: 200, body: this.#providerJson(provider) };
    if (req.method === 'POST' && (action === 'activate' || action === 'deactivate')) {
      provider.status = action === 'activate' ? 'ACTIVE' : 'INACTIVE';
      return { status: 200, body: this.#providerJson(provider) };
    }
    return oktaError(405, 'E0000022', 'The endpoint does not support the provided HTTP method');
  }

  async #createProvider(req: FakeRequest): Promise<FakeResponse> {
    const body = isObject(req.json) ? req.json : {};
    const settings = isObject(body.settings) ? body.settings : {};
    const causes: string[] = [];
    if (typeof body.name !== 'string' || body.name.length === 0 || body.name.length > 100) {
      causes.push('name: The field cannot be left blank and is at most 100 characters');
    }
    if (typeof body.type !== 'string' || body.type.length === 0 || body.type.length > 255) {
      causes.push('type: The field cannot be left blank');
    }
    let resolved: Provider['settings'] | undefined;
    if (typeof settings.well_known_url === 'string') {
      const doc = (await fetch(settings.well_known_url)
        .then((r) => r.json())
        .catch(() => ({}))) as Record<string, unknown>;
      if (typeof doc.issuer !== 'string' || typeof doc.jwks_uri !== 'string') {
        causes.push('settings.well_known_url: The well-known configuration has no issuer or jwks_uri');
      } else {
        resolved = { issuer: doc.issuer, jwks_url: doc.jwks_uri, well_known_url: settings.well_known_url };
      }
    } else if (typeof settings.issuer === 'string' && typeof settings.jwks_url === 'string') {
      resolved = { issuer: settings.issuer, jwks_url: settings.jwks_url };
    } else {
      causes.push('settings: Either well_known_url, or issuer and jwks_url, are required');
    }
    if (causes.length > 0 || !resolved)
      return oktaError(400, 'E0000001', 'Api validation failed: settings', causes);
    const provider = this.addProvider(resolved);
    provider.name = body.name as string;
    provider.type = body.type as string;
    return { status: 200, body: this.#providerJson(provider) };
  }

  async #receive(req: FakeRequest): Promise<FakeResponse> {
    if (req.headers['content-type'] !== 'application/secevent+jwt') {
      return setError('invalid_request', 'The request content type must be application/secevent+jwt');
    }
    const parts = req.body.split('.');
    const header = decodeSegment(parts[0]);
    const claims = decodeSegment(parts[1]);
    if (parts.length !== 3 || !header || !claims)
      return setError('invalid_request', 'The request body is not a signed JWT');
    for (const field of ['kid', 'typ', 'alg']) {
      if (typeof header[field] !== 'string')
        return setError('invalid_request', `The JWT header ${field} cannot be left blank`);
    }
    if (header.typ !== 'secevent+jwt')
      return setError('invalid_request', 'The JWT header typ must be secevent+jwt');
    const provider = [...this.providers.values()].find((p) => p.settings.issuer === claims.iss);
    if (!provider)
      return setError(
        'invalid_issuer',
        `No security events provider is registered with issuer ${String(claims.iss)}`,
      );
    if (provider.status !== 'ACTIVE')
      return setError('invalid_issuer', 'The security events provider is not active');
    const jwks = (await fetch(provider.settings.jwks_url).then((r) => r.json())) as { keys: JWK[] };
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk)
      return setError(
        'invalid_key',
        `Could not find a key with kid ${String(header.kid)} in the provider's JWKS`,
      );
    try {
      await compactVerify(req.body, await importJWK(jwk, header.alg as string));
    } catch {
      return setError('authentication_failed', 'Could not verify message signature with the provided JWKS');
    }
    const org = this.orgUrl;
    if (claims.aud !== org && claims.aud !== `${org}/`) {
      return setError('invalid_audience', `The audience must be ${org}`);
    }
    for (const field of ['iss', 'aud', 'jti', 'iat', 'events']) {
      if (claims[field] === undefined)
        return setError('invalid_request', `${field}: The field cannot be left blank`);
    }
    const events = claims.events;
    if (!isObject(events) || Object.keys(events).length !== 1) {
      return setError('invalid_request', 'events: Exactly one event is required');
    }
    const [type, event] = Object.entries(events)[0] as [string, unknown];
    if (!OKTA_EVENTS[type])
      return setError('invalid_request', `events: The event type ${type} is not supported`);
    const problems = isObject(event) ? eventProblems(type, event) : ['events: The event must be an object'];
    if (problems.length > 0) return setError('invalid_request', problems.join('; '));
    this.accepted.push({ provider: provider.id, header, claims });
    return { status: 202 };
  }

  /** The org authorization server: client credentials with a private_key_jwt client assertion. */
  async #token(req: FakeRequest): Promise<FakeResponse> {
    const form = (req.json ?? {}) as Record<string, string>;
    const oauthError = (status: number, error: string, description: string): FakeResponse => ({
      status,
      body: { error, error_description: description },
    });
    if (form.grant_type !== 'client_credentials')
      return oauthError(400, 'unsupported_grant_type', 'The grant type is not supported.');
    if (
      form.client_assertion_type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' ||
      !form.client_assertion
    ) {
      return oauthError(
        401,
        'invalid_client',
        'Client authentication with private_key_jwt is required for okta.* scopes.',
      );
    }
    const unverified = decodeSegment(form.client_assertion.split('.')[1]);
    const client = this.clients.find((c) => c.clientId === unverified?.iss);
    if (!client) return oauthError(401, 'invalid_client', 'The client_id is not known.');
    try {
      const { payload } = await jwtVerify(form.client_assertion, await importJWK(client.publicJwk, 'RS256'), {
        audience: `${this.orgUrl}/oauth2/v1/token`,
        issuer: client.clientId,
        subject: client.clientId,
      });
      if (typeof payload.jti !== 'string')
        return oauthError(401, 'invalid_client', 'The client_assertion has no jti.');
    } catch {
      return oauthError(401, 'invalid_client', 'The client_assertion signature is invalid.');
    }
    const asked = (form.scope ?? '').split(' ').filter(Boolean);
    const refused = asked.filter((s) => !client.scopes.includes(s));
    if (refused.length > 0)
      return oauthError(400, 'invalid_scope', `The following scopes are not allowed: ${refused.join(', ')}`);
    let jkt: string | undefined;
    if (client.requireDpop) {
      const proof = await readProof(req.headers['dpop']);
      if ('problem' in proof) return oauthError(400, 'invalid_dpop_proof', proof.problem);
      if (proof.claims.htm !== 'POST' || proof.claims.htu !== `${this.orgUrl}/oauth2/v1/token`) {
        return oauthError(400, 'invalid_dpop_proof', "'htu' claim in the DPoP proof JWT is invalid.");
      }
      if (proof.claims.nonce !== this.dpopNonce) {
        return {
          ...oauthError(400, 'use_dpop_nonce', 'Authorization server requires nonce in DPoP proof.'),
          headers: { 'dpop-nonce': this.dpopNonce },
        };
      }
      jkt = proof.jkt;
    }
    this.#issued += 1;
    const token = `okta-at-${this.#issued}-${randomUUID().slice(0, 8)}`;
    this.#tokens.set(token, { scopes: asked, ...(jkt ? { jkt } : {}) });
    return {
      status: 200,
      body: {
        token_type: jkt ? 'DPoP' : 'Bearer',
        expires_in: 3600,
        access_token: token,
        scope: asked.join(' '),
      },
    };
  }

  async #revoke(req: FakeRequest): Promise<FakeResponse> {
    const denied = await this.#authorize(req, 'okta.universalLogout.manage');
    if (denied) return denied;
    const subId = isObject(req.json) ? req.json.sub_id : undefined;
    if (!isObject(subId))
      return oktaError(400, 'E0000001', 'Api validation failed: subId', [
        'sub_id: The field cannot be left blank',
      ]);
    if (subId.format === 'opaque') {
      if (!this.users.some((u) => u.id === subId.id))
        return oktaError(404, 'E0000007', `Not found: Resource not found: ${String(subId.id)} (User)`);
    } else if (subId.format !== 'iss_sub' || typeof subId.iss !== 'string' || typeof subId.sub !== 'string') {
      return oktaError(400, 'E0000001', 'Api validation failed: subId', [
        'sub_id.format: Unsupported subject format',
      ]);
    }
    this.revocations.push(subId);
    return { status: 204 };
  }

  /** The Users API lifecycle operation: ACTIVE (or any live status) → DEPROVISIONED. */
  async #deactivate(req: FakeRequest, id: string): Promise<FakeResponse> {
    const denied = await this.#authorize(req, 'okta.users.manage');
    if (denied) return denied;
    const user = this.users.find((u) => u.id === id);
    if (!user) return oktaError(404, 'E0000007', `Not found: Resource not found: ${id} (User)`);
    if (user.status === 'DEPROVISIONED') {
      return oktaError(403, 'E0000038', "This operation is not allowed in the user's current status.");
    }
    user.status = 'DEPROVISIONED';
    this.deactivations.push({ id, sendEmail: req.query.sendEmail });
    return { status: 200, body: {} };
  }

  async #usersApi(req: FakeRequest): Promise<FakeResponse> {
    const denied = await this.#authorize(req, 'okta.users.read');
    if (denied) return denied;
    const key = decodeURIComponent(req.path.slice('/api/v1/users'.length).replace(/^\//, ''));
    if (!key) {
      // Okta's search syntax: `profile.<attribute> eq "<value>"` terms joined by `or` (values with
      // quotes and backslashes escaped); string comparisons ignore case.
      const term = String.raw`profile\.(login|email) eq "((?:[^"\\]|\\.)*)"`;
      const search = req.query.search ?? '';
      if (!new RegExp(`^${term}(?: or ${term})*$`).test(search)) {
        return oktaError(400, 'E0000031', 'Invalid search criteria.');
      }
      const terms = [...search.matchAll(new RegExp(term, 'g'))].map((m) => ({
        attribute: m[1] as 'login' | 'email',
        value: (m[2] ?? '').replace(/\\(.)/g, '$1').toLowerCase(),
      }));
      const found = this.users.filter((u) =>
        terms.some((t) => u.profile[t.attribute].toLowerCase() === t.value),
      );
      return { status: 200, body: found };
    }
    const user = this.users.find((u) => u.id === key || u.profile.login.toLowerCase() === key.toLowerCase());
    return user
      ? { status: 200, body: user }
      : oktaError(404, 'E0000007', `Not found: Resource not found: ${key} (User)`);
  }
}

/**
 * The bridge's public endpoints as Okta reaches them: its JWKS and its SSF configuration
 * (`/.well-known/ssf-configuration`), on their own loopback server.
 */
export async function bridgePublisher(issuer = BRIDGE_ISSUER): Promise<FakeApi> {
  const publisher: FakeApi = new FakeApi(async (req): Promise<FakeResponse> => {
    if (req.path === '/jwks.json') return { body: await bridgeJwks() };
    if (req.path === '/.well-known/ssf-configuration') {
      return {
        body: {
          spec_version: '1_0',
          issuer,
          jwks_uri: `${publisher.url}/jwks.json`,
          delivery_methods_supported: ['urn:ietf:rfc:8935'],
        },
      };
    }
    return { status: 404 };
  });
  return publisher.start();
}
