/**
 * What the HTTP client may say about a request in logs and error messages: URLs without
 * credentials or secret query values, headers without credentials, short scrubbed body excerpts.
 */
import { scrubSecrets } from '../plugin-api/secret.ts';

const REDACTED = '[redacted]';

/** Headers that carry credentials whatever their value. */
const SENSITIVE_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'x-auth-token',
  'x-access-token',
  'x-csrf-token',
]);

// Vendor key headers come in many spellings (X-Functions-Key, X-Okta-Token, Private-Token …).
const SENSITIVE_HEADER_PATTERN =
  /(^|[-_])(auth|token|secret|password|passwd|key|apikey|signature|session)($|[-_])/i;

// Query parameters whose values are credentials in the APIs the bridge talks to.
const SENSITIVE_QUERY_PATTERN =
  /^(access_token|id_token|refresh_token|token|api[-_]?key|key|secret|client_secret|password|passwd|pwd|sig|signature|code|auth|authorization|session|sessionid|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;

// Other spellings in query strings: Google signed URLs (X-Goog-Signature, X-Goog-Credential),
// Azure API Management (subscription-key), GitLab (private_token), client assertions, HubSpot.
const SENSITIVE_QUERY_SEGMENTS =
  /(^|[-_])(token|secret|password|key|apikey|signature|credential|assertion|session)($|[-_])/i;
const SENSITIVE_QUERY_NAMES = new Set(['hapikey', 'jwt', 'assertion']);

function isSensitiveQueryName(name: string): boolean {
  return (
    SENSITIVE_QUERY_PATTERN.test(name) ||
    SENSITIVE_QUERY_SEGMENTS.test(name) ||
    SENSITIVE_QUERY_NAMES.has(name.toLowerCase())
  );
}

export function isSensitiveHeaderName(name: string, extra?: ReadonlySet<string>): boolean {
  const lower = name.toLowerCase();
  return SENSITIVE_HEADERS.has(lower) || (extra?.has(lower) ?? false) || SENSITIVE_HEADER_PATTERN.test(lower);
}

/** A copy of `headers` fit for a log line: credential headers show `[redacted]`. */
export function redactHeaders(
  headers: Record<string, string>,
  extra?: ReadonlySet<string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = isSensitiveHeaderName(name, extra) ? REDACTED : scrubSecrets(value);
  }
  return out;
}

/**
 * A URL fit for a log line: user info removed, credential-like query values redacted, and every
 * known secret value scrubbed. Unparseable input is scrubbed as text.
 */
export function scrubUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    return scrubSecrets(String(url));
  }
  if (parsed.username || parsed.password) {
    parsed.username = '';
    parsed.password = '';
  }
  const entries = [...parsed.searchParams];
  if (entries.some(([name]) => isSensitiveQueryName(name))) {
    const kept = entries.map(([name, value]): [string, string] => [
      name,
      isSensitiveQueryName(name) ? REDACTED : value,
    ]);
    parsed.search = new URLSearchParams(kept).toString();
  }
  // URLSearchParams re-encodes the brackets; keep the marker readable.
  return scrubSecrets(parsed.toString().split(encodeURIComponent(REDACTED)).join(REDACTED));
}

/** A one-line excerpt of a response body: secrets scrubbed first, then whitespace folded and cut. */
export function bodyExcerpt(body: string | undefined, maxChars = 200): string | undefined {
  if (body === undefined) return undefined;
  // A remote quoting a credential may escape it (`\/` in JSON, percent-encoding): all are scrubbed.
  const text = scrubSecrets(body).replace(/\s+/g, ' ').trim();
  if (text.length === 0) return undefined;
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

/**
 * `text` with every copy of an Authorization value the caller sent (and of its token, past the
 * scheme) replaced: for what a server answers, should it echo the request's credential.
 */
export function hideCredential(text: string, authorization: string | undefined): string {
  if (authorization === undefined) return text;
  const token = authorization.replace(/^\S+\s+/, '');
  let out = text.split(authorization).join('[redacted]');
  if (token.length >= 8) out = out.split(token).join('[redacted]');
  return out;
}
