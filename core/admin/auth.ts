import { createHash, timingSafeEqual } from 'node:crypto';
import type { AdminConfig, AdminRole } from './config.ts';

export interface AdminPrincipal {
  name: string;
  role: AdminRole;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** The bearer token of an Authorization header, if it has one. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/**
 * Resolves admin tokens to their holder. Only the `admin.tokens` of the config count: a
 * receiver's or an ingest token is unknown here. Digests are compared in constant time, every
 * token checked, so timing tells nothing about which (or whether one) matched.
 */
export function adminAuthenticator(
  config: AdminConfig,
): (token: string | undefined) => AdminPrincipal | undefined {
  const known = config.tokens.map((t) => ({ name: t.name, role: t.role, digest: digest(t.token.reveal()) }));
  return (token) => {
    if (token === undefined) return undefined;
    const presented = digest(token);
    let found: AdminPrincipal | undefined;
    for (const entry of known) {
      if (timingSafeEqual(entry.digest, presented)) found ??= { name: entry.name, role: entry.role };
    }
    return found;
  };
}

export function mayWrite(principal: AdminPrincipal): boolean {
  return principal.role === 'write';
}
