import { inspect } from 'node:util';
import { z } from 'zod';

const REDACTED = '[redacted]';
const knownSecretValues = new Set<string>();

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
    if (value.length >= 4) knownSecretValues.add(value);
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

/** Values of every Secret created in this process, for log scrubbing. */
export function registeredSecretValues(): ReadonlySet<string> {
  return knownSecretValues;
}

/** Registers a value that must never be logged although it is not wrapped (e.g. a session token). */
export function registerSecretValue(value: string): void {
  if (value.length >= 4) knownSecretValues.add(value);
}

/**
 * Whether `text` holds a known secret value as it is, percent-encoded, form-encoded
 * (`application/x-www-form-urlencoded`) or escaped in a JSON string: the forms a request body
 * carries a credential in (a `client_secret` form field, a password in JSON).
 */
export function containsSecretValue(text: string): boolean {
  for (const value of knownSecretValues) {
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

/** Replaces every known secret value in a string with `[redacted]`. */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const value of knownSecretValues) {
    if (out.includes(value)) out = out.split(value).join(REDACTED);
  }
  return out;
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
