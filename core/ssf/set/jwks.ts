/**
 * Where verification keys come from: a JWKS held locally (a file, the key store) or fetched from
 * a transmitter's `jwks_uri`, cached, and fetched again once when a SET names an unknown `kid`
 * (a transmitter that rotated its keys).
 */
import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  errors,
  type CryptoKey,
  type JSONWebKeySet,
  type JWSHeaderParameters,
} from 'jose';
import { RetryableError, type Clock } from '../../plugin-api/index.ts';
import type { HttpClient } from '../../plugin-api/types.ts';
import { createHttpClientFactory } from '../../http/client.ts';
import { silentLogger } from '../../telemetry/logger.ts';
import { SetVerificationError } from '../errors.ts';

/** Resolves the key that must have signed a SET with this protected header. */
export interface SetKeySource {
  getKey(header: JWSHeaderParameters): Promise<CryptoKey>;
}

/** Fetches a JWKS document (already parsed from JSON). */
export type JwksFetcher = (url: string, signal: AbortSignal) => Promise<unknown>;

function describeHeader(header: JWSHeaderParameters): string {
  return header.kid === undefined
    ? `alg ${String(header.alg)} (no kid)`
    : `kid "${header.kid}" and alg ${String(header.alg)}`;
}

function isJwks(value: unknown): value is JSONWebKeySet {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { keys?: unknown }).keys) &&
    (value as { keys: unknown[] }).keys.every((k) => typeof k === 'object' && k !== null)
  );
}

/** Maps jose's key-selection failures to RFC 8935 `invalid_key`. */
function keySelectionError(err: unknown, header: JWSHeaderParameters): never {
  if (err instanceof errors.JWKSNoMatchingKey) {
    throw new SetVerificationError(
      'invalid_key',
      `no key in the transmitter's JWKS matches ${describeHeader(header)}`,
      {
        code: 'SSF_ERR_SET_UNKNOWN_KEY',
        cause: err,
      },
    );
  }
  if (err instanceof errors.JWKSMultipleMatchingKeys) {
    throw new SetVerificationError(
      'invalid_key',
      `several keys in the transmitter's JWKS match ${describeHeader(header)}; the SET header needs a kid`,
      { code: 'SSF_ERR_SET_AMBIGUOUS_KEY', cause: err },
    );
  }
  throw new SetVerificationError(
    'invalid_key',
    `the key for ${describeHeader(header)} cannot be used: ${(err as Error).message}`,
    {
      code: 'SSF_ERR_SET_KEY_UNUSABLE',
      cause: err,
    },
  );
}

function resolverFor(jwks: JSONWebKeySet): ReturnType<typeof createLocalJWKSet> {
  try {
    return createLocalJWKSet(jwks);
  } catch (err) {
    throw new RetryableError(`the JWKS is malformed: ${(err as Error).message}`, {
      code: 'SSF_ERR_JWKS_INVALID',
      cause: err,
    });
  }
}

/** A fixed JWKS. */
export function localJwks(jwks: JSONWebKeySet): SetKeySource {
  const resolve = resolverFor(jwks);
  return {
    async getKey(header) {
      try {
        return await resolve(header);
      } catch (err) {
        return keySelectionError(err, header);
      }
    },
  };
}

/**
 * A JWKS that changes over time (the key store: keys rotate and retire). The resolver is
 * rebuilt whenever the document changes.
 */
export function dynamicJwks(current: () => JSONWebKeySet): SetKeySource {
  let lastText = '';
  let source: SetKeySource | undefined;
  return {
    getKey(header) {
      const jwks = current();
      const text = JSON.stringify(jwks);
      if (!source || text !== lastText) {
        source = localJwks(jwks);
        lastText = text;
      }
      return source.getKey(header);
    },
  };
}

/** Reads a JWKS (or a single public JWK) from a file. */
export async function jwksFromFile(path: string): Promise<SetKeySource> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new RetryableError(`cannot read a JWKS from ${path}: ${(err as Error).message}`, {
      code: 'SSF_ERR_JWKS_UNAVAILABLE',
      cause: err,
    });
  }
  const jwks = isJwks(parsed) ? parsed : { keys: [parsed as JSONWebKeySet['keys'][number]] };
  return localJwks(jwks);
}

/** Largest JWKS document read: a transmitter's key set is a few kilobytes. */
export const MAX_JWKS_BYTES = 512 * 1024;
/** Longest a fetch may take when the caller's signal gives no earlier end. */
const JWKS_FETCH_TIMEOUT_MS = 30_000;

let jwksClient: HttpClient | undefined;

/**
 * The client JWKS documents are fetched with: the bridge's HTTP client, so a document is read
 * only up to MAX_JWKS_BYTES (a larger or endless body is cut off as it arrives, not held in
 * memory first), a redirect never leaves https for plain http nor carries credentials to another
 * origin, and proxies are used as for every other request.
 */
function defaultJwksClient(): HttpClient {
  jwksClient ??= createHttpClientFactory({
    logger: silentLogger(),
    signal: new AbortController().signal,
    onAuthFailure: () => undefined,
  }).create({
    timeoutMs: JWKS_FETCH_TIMEOUT_MS,
    maxResponseBytes: MAX_JWKS_BYTES,
    headers: { accept: 'application/jwk-set+json, application/json' },
  });
  return jwksClient;
}

/** Default fetcher: JSON only, at most MAX_JWKS_BYTES, within the caller's signal. */
export const fetchJwksDocument: JwksFetcher = async (url, signal) => {
  const response = await defaultJwksClient().get(url, { signal, responseType: 'text' });
  return JSON.parse(response.data as string) as unknown;
};

export interface RemoteJwksOptions {
  fetcher?: JwksFetcher;
  /** Per fetch; default 5 s. */
  timeoutMs?: number;
  /** How long a fetched JWKS is used before it is fetched again; default 10 min. A failed re-fetch keeps the old one. */
  cacheMaxAgeMs?: number;
  /** Minimum time between two fetches triggered by unknown kids; default 30 s. */
  cooldownMs?: number;
  clock?: Clock;
}

export interface RemoteJwks extends SetKeySource {
  /** Fetches the JWKS now. */
  refresh(): Promise<void>;
}

/** Longest wait between two attempts to fetch a JWKS that could not be fetched. */
const MAX_FETCH_BACKOFF_MS = 300_000;

function seconds(ms: number): string {
  return `${Math.ceil(ms / 1000)} s`;
}

/**
 * A transmitter's JWKS at `url`, cached, re-fetched once on an unknown kid.
 *
 * Nothing here refuses a SET only because a fetch was not allowed yet: a kid the cache lacks
 * while re-fetching is held back by the cooldown, and any key while a failed fetch is backed off,
 * are retryable errors whose `retryAfterMs` says when the JWKS can be fetched again (a push
 * receiver answers 503 with Retry-After; a poll receiver leaves the SET unacknowledged). After a
 * failed fetch the next one waits `cooldownMs` (at least 1 s), doubling up to 5 min, so a
 * transmitter whose JWKS endpoint is down is not asked again for every SET.
 */
export function remoteJwks(url: string, options: RemoteJwksOptions = {}): RemoteJwks {
  const fetcher = options.fetcher ?? fetchJwksDocument;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const maxAge = options.cacheMaxAgeMs ?? 600_000;
  const cooldown = options.cooldownMs ?? 30_000;
  const now = () => (options.clock ?? { now: () => new Date() }).now().getTime();
  let cached: { source: SetKeySource; fetchedAt: number } | undefined;
  let pending: Promise<void> | undefined;
  let failures = 0;
  /** After a failed fetch, none is tried before this time. */
  let retryAt = 0;

  function failed(err: RetryableError): RetryableError {
    failures += 1;
    const backoff = Math.min(Math.max(cooldown, 1000) * 2 ** (failures - 1), MAX_FETCH_BACKOFF_MS);
    retryAt = now() + backoff;
    return new RetryableError(err.message, { code: err.code, cause: err.cause, retryAfterMs: backoff });
  }

  async function load(): Promise<void> {
    let document: unknown;
    try {
      document = await fetcher(url, AbortSignal.timeout(timeoutMs));
    } catch (err) {
      throw failed(
        new RetryableError(`cannot fetch the JWKS at ${url}: ${(err as Error).message}`, {
          code: 'SSF_ERR_JWKS_UNAVAILABLE',
          cause: err,
        }),
      );
    }
    if (!isJwks(document)) {
      throw failed(
        new RetryableError(`${url} did not return a JWKS ({"keys": [...]})`, {
          code: 'SSF_ERR_JWKS_INVALID',
        }),
      );
    }
    cached = { source: localJwks(document), fetchedAt: now() };
    failures = 0;
    retryAt = 0;
  }

  function refresh(): Promise<void> {
    pending ??= load().finally(() => {
      pending = undefined;
    });
    return pending;
  }

  /** refresh(), unless a failed fetch is still backed off. */
  async function refreshWhenDue(): Promise<void> {
    const wait = retryAt - now();
    if (wait > 0 && !pending) {
      throw new RetryableError(
        `the JWKS at ${url} could not be fetched; it is fetched again in ${seconds(wait)}`,
        { code: 'SSF_ERR_JWKS_UNAVAILABLE', retryAfterMs: wait },
      );
    }
    await refresh();
  }

  return {
    refresh,
    async getKey(header) {
      // Whether the JWKS was fetched for this call: a kid missing from it then is missing for good.
      let fresh = false;
      if (!cached) {
        await refreshWhenDue();
        fresh = true;
      } else if (now() - cached.fetchedAt >= maxAge) {
        // A stale JWKS still verifies while the transmitter's endpoint is briefly unreachable.
        fresh = await refreshWhenDue().then(
          () => true,
          () => false,
        );
      }
      const current = cached as { source: SetKeySource; fetchedAt: number };
      try {
        return await current.source.getKey(header);
      } catch (err) {
        const unknownKid = err instanceof SetVerificationError && err.code === 'SSF_ERR_SET_UNKNOWN_KEY';
        if (!unknownKid || fresh) throw err;
        // The transmitter may have rotated its keys since the last fetch. Until the cooldown lets
        // the JWKS be fetched again, the SET is neither verified nor refused: it is retried.
        const wait = current.fetchedAt + cooldown - now();
        if (wait > 0) {
          throw new RetryableError(
            `no key with ${describeHeader(header)} in the JWKS fetched from ${url} ${seconds(now() - current.fetchedAt)} ago; it may be fetched again in ${seconds(wait)}`,
            { code: 'SSF_ERR_JWKS_COOLDOWN', retryAfterMs: wait, cause: err },
          );
        }
        await refreshWhenDue();
        return (cached as { source: SetKeySource }).source.getKey(header);
      }
    },
  };
}
