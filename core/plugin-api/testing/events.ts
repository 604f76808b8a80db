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
