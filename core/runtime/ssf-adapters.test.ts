import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bridgeJwks, bridgeKeys, BRIDGE_ISSUER } from '../../test/helpers/outbound.ts';
import { deliveryConfigSchema } from '../delivery/config.ts';
import { routesConfigSchema } from '../pipeline/config.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import { ManualClock } from '../storage/testing/fixtures.ts';
import { findEventType, localJwks, SetCodec, subjectKey, verifySet } from '../ssf/index.ts';
import { codecSigner, validateDraft } from './ssf-adapters.ts';

describe('event validation at acceptance (same rules as the SET builder)', () => {
  it('resolves short names to URIs and normalises the subject', () => {
    const result = validateDraft({
      type: 'caep.session-revoked',
      subject: { format: 'email', email: 'Jane@EXAMPLE.com' },
      sourceRecordId: 'r1',
    });
    expect(result).toMatchObject({
      ok: true,
      event: {
        type: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
        subject: { format: 'email', email: 'Jane@example.com' },
      },
    });
  });

  it('reports an unknown type with a suggestion, and a malformed subject, together', () => {
    const result = validateDraft({
      type: 'caep.session-revokd',
      subject: { format: 'email' },
      sourceRecordId: 'r2',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.path)).toEqual(['type', 'subject.email']);
    expect(result.problems[0]?.message).toMatch(/caep\.session-revoked/);
  });

  it('CAEP 1.0 §3.5: device-compliance-change needs current_status and previous_status', () => {
    const result = validateDraft({
      type: 'caep.device-compliance-change',
      subject: { format: 'opaque', id: 'dev-1' },
      claims: { current_status: 'not-compliant' },
      sourceRecordId: 'r3',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual([
      expect.objectContaining({ path: expect.stringMatching(/previous_status$/) }),
    ]);
  });

  it('accepts an Okta risk event without event_timestamp: it is filled in from the occurrence time', () => {
    const result = validateDraft({
      type: 'okta.user-risk-change',
      subject: { format: 'complex', user: { format: 'email', email: 'a@example.com' } },
      claims: { current_level: 'high', previous_level: 'low', reason_admin: { en: 'EDR detection' } },
      occurredAt: '2026-11-29T10:00:00Z',
      sourceRecordId: 'r4',
    });
    expect(result.ok).toBe(true);
  });
});

describe('the signer of the delivery engine', () => {
  it('tells outbound connectors where an event came from: instance, connector and source record id', async () => {
    const codec = new SetCodec({ issuer: BRIDGE_ISSUER, keys: await bridgeKeys() });
    const signer = codecSigner(codec, undefined, (id) => (id === 'workday-prod' ? 'workday' : undefined));
    const event = {
      id: 'evt-1',
      instanceId: 'workday-prod',
      sourceRecordId: 'WID-3341',
      type: 'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
      subject: { format: 'email', email: 'dana.lee@example.com' },
      subjectKey: 'email:dana.lee@example.com',
      claims: {},
      txn: 'txn-1',
      occurredAt: new Date('2026-01-02T09:30:00Z'),
      acceptedAt: new Date('2026-01-02T09:30:01Z'),
    };
    const destination = {
      id: 'hook',
      kind: 'outbound' as const,
      target: { audience: 'urn:hook', profile: 'ssf-1.0' },
    };
    const signed = await signer.sign(event, destination, { jti: 'jti-1', attempt: 2 });
    expect(signed).toMatchObject({
      jti: 'jti-1',
      attempt: 2,
      source: { instance: 'workday-prod', connector: 'workday', record: 'WID-3341' },
    });
    const unknown = await signer.sign({ ...event, instanceId: 'gone' }, destination, {
      jti: 'jti-2',
      attempt: 0,
    });
    expect(unknown.source).toEqual({ instance: 'gone', record: 'WID-3341' });
  });
});

describe('iat of a held future-dated event (RFC 8417 §2.2, checklist TX-10/SET-11)', () => {
  const DAY = 86_400_000;
  const destination = { id: 'hook', kind: 'outbound' as const, target: { audience: 'urn:hook' } };

  async function acceptAndRelease(occurredInMs: number) {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-iat-'));
    const store = SqliteStore.open({ path: join(dir, 'bridge.db') });
    const clock = new ManualClock('2026-11-27T09:00:00Z');
    const delivery = deliveryConfigSchema.parse({});
    const pipeline = new Pipeline({
      store,
      delivery,
      routes: routesConfigSchema.parse([{ to: ['hook'] }]),
      validateEvent: validateDraft,
      subjectKey,
      resolveEventType: (name) => findEventType(name)?.uri,
      clock,
      backlogRefreshMs: 0,
    });
    const occurredAt = new Date(clock.now().getTime() + occurredInMs);
    const { accepted } = await pipeline.accept('workday-prod', [
      {
        type: 'risc.account-disabled',
        subject: { format: 'email', email: 'leaver@example.com' },
        sourceRecordId: `WID-${occurredInMs}`,
        occurredAt: occurredAt.toISOString(),
      },
    ]);
    if (occurredInMs > delivery.future_events.tolerance) {
      clock.advance(occurredInMs + 30_000);
      expect(await pipeline.releaseDue()).toBe(1);
    }
    const event = (await store.events.get(accepted[0]!))!;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    const codec = new SetCodec({ issuer: BRIDGE_ISSUER, keys: await bridgeKeys(), clock });
    const signer = codecSigner(codec, undefined, undefined, delivery.future_events);
    return { event, signer, clock, occurredAt };
  }

  it('a leaver held 3 days is issued at its release and passes a receiver with a one-day max age', async () => {
    const { event, signer, clock, occurredAt } = await acceptAndRelease(3 * DAY);
    const first = await signer.sign(event, destination, { jti: 'jti-held', attempt: 0 });
    const keys = localJwks(await bridgeJwks());
    const verify = (jwt: string) =>
      verifySet(jwt, { keys, issuer: BRIDGE_ISSUER, audience: 'urn:hook', maxAgeMs: DAY, clock });
    await expect(verify(first.jwt)).resolves.toBeDefined();
    const iat = first.claims.iat as number;
    expect(iat).toBeGreaterThanOrEqual(Math.floor(occurredAt.getTime() / 1000));
    expect(iat * 1000).toBeLessThanOrEqual(clock.now().getTime());

    clock.advance(2 * 3_600_000);
    const retry = await signer.sign(event, destination, { jti: 'jti-held', attempt: 1 });
    expect(retry.claims.iat).toBe(iat);
    await expect(verify(retry.jwt)).resolves.toBeDefined();
  });

  it('an event within the future-events tolerance keeps iat = acceptance, never in the future', async () => {
    const { event, signer, clock } = await acceptAndRelease(90_000);
    const signed = await signer.sign(event, destination, { jti: 'jti-skewed', attempt: 0 });
    expect(signed.claims.iat).toBe(Math.floor(event.acceptedAt.getTime() / 1000));
    expect((signed.claims.iat as number) * 1000).toBeLessThanOrEqual(clock.now().getTime());
  });
});
