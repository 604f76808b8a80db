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

const MAX_JWKS_BYTES = 512 * 1024;

/** Default fetcher: Node's fetch, JSON only, bounded size. */
export const fetchJwksDocument: JwksFetcher = async (url, signal) => {
  const response = await fetch(url, {
    signal,
    headers: { accept: 'application/jwk-set+json, application/json' },
  });
  if (!response.ok) throw new Error(`HTTP ${response.status} from ${url}`);
  const text = await response.text();
  if (text.length > MAX_JWKS_BYTES)
    throw new Error(`the JWKS at ${url} is larger than ${MAX_JWKS_BYTES} bytes`);
  return JSON.parse(text) as unknown;
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

/** A transmitter's JWKS at `url`, cached, re-fetched once on an unknown kid. */
export function remoteJwks(url: string, options: RemoteJwksOptions = {}): RemoteJwks {
  const fetcher = options.fetcher ?? fetchJwksDocument;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const maxAge = options.cacheMaxAgeMs ?? 600_000;
  const cooldown = options.cooldownMs ?? 30_000;
  const now = () => (options.clock ?? { now: () => new Date() }).now().getTime();
  let cached: { source: SetKeySource; fetchedAt: number } | undefined;
  let pending: Promise<void> | undefined;

  async function load(): Promise<void> {
    let document: unknown;
    try {
      document = await fetcher(url, AbortSignal.timeout(timeoutMs));
    } catch (err) {
      throw new RetryableError(`cannot fetch the JWKS at ${url}: ${(err as Error).message}`, {
        code: 'SSF_ERR_JWKS_UNAVAILABLE',
        cause: err,
      });
    }
    if (!isJwks(document)) {
      throw new RetryableError(`${url} did not return a JWKS ({"keys": [...]})`, {
        code: 'SSF_ERR_JWKS_INVALID',
      });
    }
    cached = { source: localJwks(document), fetchedAt: now() };
  }

  function refresh(): Promise<void> {
    pending ??= load().finally(() => {
      pending = undefined;
    });
    return pending;
  }

  return {
    refresh,
    async getKey(header) {
      if (!cached) await refresh();
      else if (now() - cached.fetchedAt >= maxAge) {
        // A stale JWKS still verifies while the transmitter's endpoint is briefly unreachable.
        await refresh().catch(() => undefined);
      }
      const current = cached as { source: SetKeySource; fetchedAt: number };
      try {
        return await current.source.getKey(header);
      } catch (err) {
        const unknownKid = err instanceof SetVerificationError && err.code === 'SSF_ERR_SET_UNKNOWN_KEY';
        if (!unknownKid || now() - current.fetchedAt < cooldown) throw err;
        await refresh();
        return (cached as { source: SetKeySource }).source.getKey(header);
      }
    },
  };
}
