/**
 * What keeps credentials out of log lines, beside the values of known secrets:
 *
 * - fields named like credentials (`authorization`, `password`, `client_secret`, `x-api-key` …)
 *   are replaced at any depth, inside arrays too, whatever the case of their name (HTTP header
 *   names come as `Authorization` as often as `authorization`);
 * - the private members of a JWK (`d`, `p`, `q` …, `k` of a symmetric key) are replaced;
 * - in the finished line, the password of a URL (`postgres://user:pass@db`), the credentials after
 *   `Bearer`, `DPoP` or `Basic`, and known secret values in the escaped form a JSON line spells
 *   them in (a quote or backslash in a password) are replaced.
 */
import { scrubSecrets } from '../plugin-api/secret.ts';

const REDACTED = '[redacted]';

/** Field names (lower case) whose values are credentials wherever they appear. */
const SENSITIVE_FIELDS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'api_key',
  'apikey',
  'x-auth-token',
  'x-access-token',
  'dpop',
  'password',
  'passwd',
  'secret',
  'client_secret',
  'client_assertion',
  'signing_secret',
  'authorization_header',
  'private_key',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
]);

/** Members of a JWK (RFC 7518 §6) that hold private or symmetric key material. */
const PRIVATE_JWK_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);

/** Nesting beyond this is left as it is: the line-level scrubbing still applies. */
const MAX_DEPTH = 12;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function redactsTo(value: unknown): boolean {
  return typeof value === 'string' || (typeof value === 'object' && value !== null);
}

/**
 * A copy of `value` with credential fields and private JWK members replaced; the value itself
 * when nothing needed replacing. Only plain objects and arrays are walked (errors go through
 * their serializer first).
 */
export function redactFields(value: unknown, depth = 0): unknown {
  if (depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, i) => {
      const next = redactFields(item, depth + 1);
      if (next !== item) (copy ??= [...value])[i] = next;
    });
    return copy ?? value;
  }
  if (!isPlainObject(value)) return value;
  const jwk = typeof value.kty === 'string';
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = value[key];
    let next: unknown;
    if (
      redactsTo(item) &&
      (SENSITIVE_FIELDS.has(key.toLowerCase()) || (jwk && PRIVATE_JWK_MEMBERS.has(key)))
    ) {
      next = REDACTED;
    } else {
      next = redactFields(item, depth + 1);
    }
    if (next !== item) (copy ??= { ...value })[key] = next;
  }
  return copy ?? value;
}

// `scheme://user:password@host`: the password, up to the `@` of the authority.
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:"\\]*):([^\s/?#@"\\]+)@/gi;
// Credentials after an auth scheme: at least 8 token68 characters with a digit or a dot, dash …
// inside (a JWT, an opaque token), or 20 of any (so prose such as "Basic credentials" or
// "Bearer challenge" stays readable).
const SCHEME_CREDENTIALS =
  /\b(Bearer|DPoP|Basic)( +)(?=[A-Za-z0-9._~+/-]*(?:\d|[._~+/-][A-Za-z0-9])|[A-Za-z0-9._~+/=-]{20})[A-Za-z0-9._~+/-]{8,}=*/g;

/** A finished log line with every credential the line-level rules find replaced. */
export function scrubLogLine(line: string): string {
  let out = scrubSecrets(line);
  if (out.includes('://')) out = out.replace(URL_PASSWORD, `$1:${REDACTED}@`);
  if (/Bearer|DPoP|Basic/.test(out)) out = out.replace(SCHEME_CREDENTIALS, `$1$2${REDACTED}`);
  return out;
}
