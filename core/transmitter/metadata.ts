/**
 * Where the transmitter lives and how it describes itself: the endpoint URLs derived from the
 * issuer, the inserted well-known path (SSF 1.0 §7.2), and the Transmitter Configuration
 * Metadata document (§7.1).
 */
import { POLL_METHOD, PUSH_METHOD } from './config.ts';

export const WELL_KNOWN_SSF = '/.well-known/ssf-configuration';

export interface TransmitterUrls {
  /** Exactly as configured: metadata `issuer`, stream `iss` and SET `iss` are this string. */
  issuer: string;
  /** Path prefix the routes are mounted under ('' for an issuer without a path). */
  basePath: string;
  /** Path of the metadata document on this server. */
  wellKnownPath: string;
  jwksUri: string;
  configurationEndpoint: string;
  statusEndpoint: string;
  addSubjectEndpoint: string;
  removeSubjectEndpoint: string;
  verificationEndpoint: string;
  pollEndpoint(streamId: string): string;
}

/** Route paths relative to the base path. */
export const ROUTES = {
  jwks: '/jwks.json',
  streams: '/ssf/streams',
  status: '/ssf/status',
  addSubject: '/ssf/subjects/add',
  removeSubject: '/ssf/subjects/remove',
  verify: '/ssf/verify',
  poll: '/ssf/poll/:streamId',
} as const;

/**
 * Derives every URL from the issuer. The issuer's path, without one trailing slash, becomes the
 * route prefix and is appended to the well-known path (§7.2.1: `https://tx.example/t1` is
 * described at `https://tx.example/.well-known/ssf-configuration/t1`).
 */
export function transmitterUrls(issuer: string): TransmitterUrls {
  let parsed: URL;
  try {
    parsed = new URL(issuer);
  } catch {
    throw new TypeError(`the issuer "${issuer}" is not an absolute URL`);
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new TypeError(`the issuer "${issuer}" must not have a query or fragment (SSF 1.0 §7.1)`);
  }
  const basePath = parsed.pathname.replace(/\/$/, '');
  const origin = `${parsed.protocol}//${parsed.host}`;
  const at = (route: string) => `${origin}${basePath}${route}`;
  return {
    issuer,
    basePath,
    wellKnownPath: `${WELL_KNOWN_SSF}${basePath}`,
    jwksUri: at(ROUTES.jwks),
    configurationEndpoint: at(ROUTES.streams),
    statusEndpoint: at(ROUTES.status),
    addSubjectEndpoint: at(ROUTES.addSubject),
    removeSubjectEndpoint: at(ROUTES.removeSubject),
    verificationEndpoint: at(ROUTES.verify),
    pollEndpoint: (streamId) => at(`/ssf/poll/${encodeURIComponent(streamId)}`),
  };
}

export interface TransmitterMetadata {
  spec_version: '1_0';
  issuer: string;
  jwks_uri: string;
  delivery_methods_supported: string[];
  configuration_endpoint: string;
  status_endpoint: string;
  add_subject_endpoint: string;
  remove_subject_endpoint: string;
  verification_endpoint: string;
  authorization_schemes: Array<{ spec_urn: string }>;
  default_subjects: 'ALL' | 'NONE';
}

/** The metadata document. Every array is non-empty: SSF 1.0 §7.2.3 forbids empty claims. */
export function transmitterMetadata(
  urls: TransmitterUrls,
  defaultSubjects: 'ALL' | 'NONE',
): TransmitterMetadata {
  return {
    spec_version: '1_0',
    issuer: urls.issuer,
    jwks_uri: urls.jwksUri,
    delivery_methods_supported: [PUSH_METHOD, POLL_METHOD],
    configuration_endpoint: urls.configurationEndpoint,
    status_endpoint: urls.statusEndpoint,
    add_subject_endpoint: urls.addSubjectEndpoint,
    remove_subject_endpoint: urls.removeSubjectEndpoint,
    verification_endpoint: urls.verificationEndpoint,
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
    default_subjects: defaultSubjects,
  };
}
