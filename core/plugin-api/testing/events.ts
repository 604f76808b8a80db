import type { EventDraft, SignedSet } from '../types.ts';
import {
  KeyStore,
  buildSet,
  defaultKeysConfig,
  eventCatalog,
  generateKeyMaterial,
  signSet,
  type BuiltSet,
  type SetDestination,
  type SigningKey,
} from '../../ssf/index.ts';

/** The destination every kit SET is built for; part of each jti. */
export const KIT_DESTINATION: SetDestination = {
  id: 'kit-destination',
  audience: 'https://receiver.kit.test',
};
export const KIT_ISSUER = 'https://bridge.kit.test';
const FIXED_NOW = new Date('2026-01-01T00:00:00Z');

export type DraftCheck = { ok: true; built: BuiltSet } | { ok: false; message: string };

/**
 * Checks a draft the way the core does before signing: known type, valid subject and claims.
 * The built SET carries the jti the core would give it for the kit destination.
 */
export function checkDraft(draft: EventDraft, instanceId: string): DraftCheck {
  try {
    const built = buildSet({
      event: draft,
      sourceInstanceId: instanceId,
      destination: KIT_DESTINATION,
      issuer: KIT_ISSUER,
      now: FIXED_NOW,
    });
    return { ok: true, built };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

/** The jti of a draft, or undefined when it is invalid. */
export function jtiOf(draft: EventDraft, instanceId: string): string | undefined {
  const checked = checkDraft(draft, instanceId);
  return checked.ok ? checked.built.jti : undefined;
}

/** Whether a manifest list (`emits`/`accepts`) allows an event type. */
export function listAllows(list: readonly string[] | undefined, type: string): boolean {
  if (!list || list.includes('*')) return true;
  const uri = eventCatalog.find(type)?.uri;
  return list.some((entry) => entry === type || (uri !== undefined && eventCatalog.find(entry)?.uri === uri));
}

/** Entries of a manifest list the catalog does not know (`*` is always known). */
export function unknownTypes(list: readonly string[] | undefined): string[] {
  return (list ?? []).filter((entry) => entry !== '*' && eventCatalog.find(entry) === undefined);
}

const SAMPLE_SUBJECT = { format: 'email', email: 'pat.lee@example.com' };
const SAMPLE_DEVICE = { format: 'opaque', id: 'kit-device-1' };

/**
 * A draft an outbound connector accepts: the first accepted type that builds with a simple
 * email subject and no claims. Types that need claims require `outbound.event` in the options.
 */
export function sampleDraft(accepts: readonly string[] | undefined): EventDraft | undefined {
  const candidates = !accepts || accepts.includes('*') ? ['caep.session-revoked'] : accepts;
  for (const type of candidates) {
    const draft: EventDraft = { type, subject: SAMPLE_SUBJECT, sourceRecordId: 'kit-record-1' };
    if (checkDraft(draft, 'kit').ok) return draft;
  }
  return undefined;
}

/** Claims a sample event of each built-in type that requires some carries. */
function sampleClaims(shortName: string): Record<string, unknown> {
  // Okta's types require a reason; the okta-itp profile puts the subject in the event.
  const reason = { reason_admin: { en: 'Conformance kit sample event' } };
  switch (shortName) {
    case 'caep.token-claims-change':
      return { claims: { role: 'read-only' } };
    case 'caep.credential-change':
      return { credential_type: 'password', change_type: 'update' };
    case 'caep.assurance-level-change':
      return {
        namespace: 'NIST-AAL',
        current_level: 'nist-aal1',
        previous_level: 'nist-aal2',
        change_direction: 'decrease',
      };
    case 'caep.device-compliance-change':
      return { previous_status: 'compliant', current_status: 'not-compliant' };
    case 'caep.risk-level-change':
      return { principal: 'USER', current_level: 'HIGH', previous_level: 'LOW' };
    case 'risc.credential-compromise':
      return { credential_type: 'password' };
    case 'okta.user-risk-change':
    case 'okta.device-risk-change':
      return { ...reason, current_level: 'high', previous_level: 'low' };
    case 'okta.ip-change':
      return { ...reason, current_ip_address: '203.0.113.7', previous_ip_address: '198.51.100.9' };
    default:
      return {};
  }
}

/** Claims of CAEP 1.0 §2 every CAEP type takes, carried from a given event to the other types. */
const COMMON_CAEP_CLAIMS = ['initiating_entity', 'reason_admin', 'reason_user'];

/** The types a `["*"]` destination is sent one sample each of: CAEP and RISC, none deprecated. */
function standardTypes(): string[] {
  // Vendor types (Okta's) are for destinations that name them.
  return eventCatalog
    .list()
    .filter((d) => d.vendor === undefined && d.deprecated === undefined && /^(caep|risc)\./.test(d.shortName))
    .map((d) => d.shortName);
}

/**
 * One draft per type an outbound connector accepts (one per standard CAEP and RISC type for
 * `["*"]`), in `accepts` order: the first given draft of that type when there is one, else a
 * sample of the type with the subject (and common CAEP claims) of `template`, or a simple email
 * subject, and the claims the type requires. A type the kit cannot build is listed with no draft.
 */
export function sampleDrafts(
  accepts: readonly string[] | undefined,
  given: readonly EventDraft[] = [],
  template: EventDraft | undefined = given[0],
): Array<{ type: string; draft: EventDraft | undefined }> {
  const types = !accepts || accepts.includes('*') ? standardTypes() : [...accepts];
  const uriOf = (type: string) => eventCatalog.find(type)?.uri ?? type;
  return types.map((type) => {
    const own = given.find((d) => uriOf(d.type) === uriOf(type));
    if (own) return { type, draft: own };
    const shortName = eventCatalog.find(type)?.shortName ?? type;
    const common = Object.fromEntries(
      Object.entries(template?.claims ?? {}).filter(([k]) => COMMON_CAEP_CLAIMS.includes(k)),
    );
    // Okta's device type names a device: an opaque id, not a user's address.
    const device = shortName === 'okta.device-risk-change' ? [SAMPLE_DEVICE] : [];
    const subjects = [...device, template?.subject, SAMPLE_SUBJECT].filter((s) => s !== undefined);
    for (const subject of subjects) {
      const required = sampleClaims(shortName);
      const claimSets =
        shortName.startsWith('caep.') && Object.keys(common).length > 0
          ? [{ ...common, ...required }, required]
          : [required];
      for (const claims of claimSets) {
        const draft: EventDraft = {
          type,
          subject,
          ...(Object.keys(claims).length > 0 ? { claims } : {}),
          sourceRecordId: 'kit-record-1',
        };
        if (checkDraft(draft, 'kit').ok) return { type, draft };
      }
    }
    return { type, draft: undefined };
  });
}

let keyPromise: Promise<SigningKey> | undefined;

/** One ES256 key per process, held in memory through the key store's configured-key path. */
function signingKey(): Promise<SigningKey> {
  keyPromise ??= (async () => {
    const material = await generateKeyMaterial('ES256');
    const config = defaultKeysConfig({ algorithm: 'ES256', secrets: [JSON.stringify(material.privateJwk)] });
    const store = await KeyStore.open({ dataDir: 'unused-with-configured-keys', config });
    return store.signingKey();
  })();
  return keyPromise;
}

/** A signed SET for `draft`, as the delivery engine hands one to an outbound connector. */
export async function mintSet(
  draft: EventDraft,
  sourceRecordId: string,
  target: SetDestination = KIT_DESTINATION,
): Promise<SignedSet> {
  const built = buildSet({
    event: { ...draft, sourceRecordId },
    sourceInstanceId: 'kit-source',
    destination: target,
    issuer: KIT_ISSUER,
    now: FIXED_NOW,
  });
  const minted = await signSet(built, await signingKey());
  return {
    jwt: minted.jwt,
    jti: minted.jti,
    claims: minted.claims,
    eventType: minted.eventType,
    event: minted.event,
    subject: minted.subject,
    attempt: 0,
  };
}
