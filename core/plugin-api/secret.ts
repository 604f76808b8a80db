import { inspect } from 'node:util';
import { z } from 'zod';

const REDACTED = '[redacted]';

/**
 * How long a short-lived value is still scrubbed after it expired: a late log line or a remote's
 * error body may still quote it.
 */
export const EXPIRED_SECRET_MARGIN_MS = 15 * 60 * 1000;
/**
 * Most short-lived values kept at once (the oldest registered is forgotten first). A client holds
 * one token and signs one assertion per refresh, so this is far more than live clients need.
 */
export const MAX_SHORT_LIVED_SECRETS = 1024;

/** Values secret for as long as the process runs: configured secrets and what is derived from them. */
const permanentValues = new Set<string>();
/**
 * Values that stop being credentials when they expire (access tokens, client assertions), each
 * with the time it is forgotten at; in the order they were (last) registered.
 */
const shortLivedValues = new Map<string, number>();
/** The earliest time a short-lived value is due to be forgotten. */
let nextForgetMs = Number.POSITIVE_INFINITY;
/** Changes whenever a value is added or forgotten. */
let version = 0;

function forgetExpired(nowMs: number): void {
  if (nowMs < nextForgetMs) return;
  nextForgetMs = Number.POSITIVE_INFINITY;
  for (const [value, forgetAtMs] of shortLivedValues) {
    if (forgetAtMs <= nowMs) {
      shortLivedValues.delete(value);
      version += 1;
    } else if (forgetAtMs < nextForgetMs) nextForgetMs = forgetAtMs;
  }
}

function addPermanent(value: string): void {
  if (value.length < 4 || permanentValues.has(value)) return;
  permanentValues.add(value);
  shortLivedValues.delete(value);
  version += 1;
}

/**
 * A secret value (token, password, private key). It never prints itself: `String()`,
 * `JSON.stringify`, `util.inspect` and template literals all show `[redacted]`. Code that
 * needs the value calls `reveal()` at the last moment (e.g. when building a header).
 * Every secret created is registered so the logger can scrub its value from any log line.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    addPermanent(value);
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof Secret;
}

/** Every value scrubbed now: those of every Secret created, and the others registered and not yet forgotten. */
export function registeredSecretValues(): ReadonlySet<string> {
  forgetExpired(Date.now());
  return new Set([...permanentValues, ...shortLivedValues.keys()]);
}

/** A number that changes whenever a value is registered or forgotten, for caches of scrubbed text. */
export function registeredSecretsVersion(): number {
  return version;
}

/**
 * Registers a value that must never be logged although it is not wrapped (e.g. a session token).
 * A value that stops being a credential when it expires (an access token, a signed assertion)
 * gives its `lifetimeMs`: it is scrubbed until then and for EXPIRED_SECRET_MARGIN_MS more, and
 * then forgotten, so that a process that refreshes tokens for months does not scan every log line
 * against every token it ever had. Without a lifetime, the value is kept for good.
 */
export function registerSecretValue(value: string, options: { lifetimeMs?: number } = {}): void {
  if (value.length < 4) return;
  const { lifetimeMs } = options;
  if (lifetimeMs === undefined || Number.isNaN(lifetimeMs) || lifetimeMs === Number.POSITIVE_INFINITY) {
    addPermanent(value);
    return;
  }
  if (permanentValues.has(value)) return;
  const nowMs = Date.now();
  forgetExpired(nowMs);
  const forgetAtMs = Math.max(
    nowMs + Math.max(0, lifetimeMs) + EXPIRED_SECRET_MARGIN_MS,
    shortLivedValues.get(value) ?? 0,
  );
  // Registered again, it moves to the end: the oldest registered is forgotten first.
  shortLivedValues.delete(value);
  shortLivedValues.set(value, forgetAtMs);
  if (forgetAtMs < nextForgetMs) nextForgetMs = forgetAtMs;
  while (shortLivedValues.size > MAX_SHORT_LIVED_SECRETS) {
    shortLivedValues.delete(shortLivedValues.keys().next().value as string);
  }
  version += 1;
}

/**
 * Whether `text` holds a known secret value as it is, percent-encoded, form-encoded
 * (`application/x-www-form-urlencoded`) or escaped in a JSON string: the forms a request body
 * carries a credential in (a `client_secret` form field, a password in JSON).
 */
export function containsSecretValue(text: string): boolean {
  forgetExpired(Date.now());
  for (const value of allValues()) {
    if (text.includes(value)) return true;
    const encoded = encodeURIComponent(value);
    if (encoded !== value && text.includes(encoded)) return true;
    const form = new URLSearchParams([['', value]]).toString().slice(1);
    if (form !== encoded && form !== value && text.includes(form)) return true;
    const json = JSON.stringify(value).slice(1, -1);
    if (json !== value && text.includes(json)) return true;
  }
  return false;
}

/**
 * Replaces every known secret value in a string with `[redacted]`, as it is and in the escaped
 * spellings other text gives it: in serialized JSON (a log line, an API answer) a quote, backslash
 * or slash in a value is escaped, and a remote's answer may quote the request it refused
 * percent- or form-encoded.
 */
export function scrubSecrets(text: string): string {
  forgetExpired(Date.now());
  let out = text;
  for (const value of allValues()) {
    if (out.includes(value)) out = out.split(value).join(REDACTED);
  }
  for (const form of escapedSecretForms()) {
    if (out.includes(form)) out = out.split(form).join(REDACTED);
  }
  return out;
}

let escapedFor = -1;
let escapedForms: string[] = [];

/**
 * Known secret values as other text spells them, where that differs from the value: escaped in a
 * JSON string (also with `\/`, as PHP's json_encode writes a slash, and as Go and Python escape
 * characters), percent-encoded (upper- or lower-case hex) and form-encoded.
 */
function escapedSecretForms(): string[] {
  if (version !== escapedFor) {
    const forms = new Set<string>();
    for (const value of allValues()) {
      const json = JSON.stringify(value).slice(1, -1);
      const percent = encodeURIComponent(value);
      const spellings = [
        json,
        json.replace(/\//g, '\\/'),
        unicodeEscaped(json, GO_ESCAPED),
        unicodeEscaped(json, PYTHON_ESCAPED),
        percent,
        percent.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
        new URLSearchParams([['', value]]).toString().slice(1),
      ];
      for (const form of spellings) if (form !== value) forms.add(form);
    }
    // Longest first, so a spelling that contains another is replaced whole.
    escapedForms = [...forms].sort((a, b) => b.length - a.length);
    escapedFor = version;
  }
  return escapedForms;
}

/**
 * A JSON string's content with the characters `escaped` picks written as `\u` and four lower-case
 * hex digits, as other encoders write JSON: Go's encoding/json escapes `<`, `>`, `&`, U+2028 and
 * U+2029; Python's json.dumps every character past ASCII (past U+FFFF as its two surrogates).
 */
function unicodeEscaped(json: string, escaped: (code: number) => boolean): string {
  let out = '';
  for (let i = 0; i < json.length; i++) {
    const code = json.charCodeAt(i);
    out += escaped(code) ? `\\u${code.toString(16).padStart(4, '0')}` : json[i];
  }
  return out;
}

const GO_ESCAPED = (code: number) =>
  code === 0x3c || code === 0x3e || code === 0x26 || code === 0x2028 || code === 0x2029;
const PYTHON_ESCAPED = (code: number) => code > 0x7f;

function* allValues(): Iterable<string> {
  yield* permanentValues;
  yield* shortLivedValues.keys();
}

/**
 * Config helper: a string that becomes a Secret after validation. The JSON Schema of the
 * input is a plain string marked `secret: true`, which docs and the conformance kit read.
 */
export function secret(description?: string) {
  return z
    .string()
    .min(1)
    .transform((value) => new Secret(value))
    .meta({ secret: true, ...(description ? { description } : {}) });
}
