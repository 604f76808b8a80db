import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EventDraft } from '../../core/plugin-api/index.ts';
import type { FakeApi } from '../../test/helpers/fake-api.ts';
import { FakeOkta, bridgePublisher } from '../../test/helpers/fake-okta.ts';
import {
  BRIDGE_ISSUER,
  catalogShortNames,
  outboundHarness,
  type OutboundHarness,
} from '../../test/helpers/outbound.ts';
import { ssfPush } from '../ssf-push/index.ts';
import { oktaItp } from './index.ts';
import { riskSubject } from './mapping.ts';

const OKTA = 'https://schemas.okta.com/secevent/okta/event-type/';
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const PATH = '/security/api/v1/security-events';

const dana = { format: 'email', email: 'dana.lee@example.com' };
const laptop = { format: 'opaque', id: 'A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF' };
const danaOnLaptop = { format: 'complex', user: dana, device: laptop };

let n = 0;
function draft(
  type: string,
  claims: Record<string, unknown> = {},
  subject: Record<string, unknown> = dana,
): EventDraft {
  n += 1;
  return {
    type,
    subject: subject as EventDraft['subject'],
    claims,
    sourceRecordId: `rec-${n}`,
    occurredAt: '2026-01-01T00:00:00Z',
  };
}

const okta = new FakeOkta();
let publisher: FakeApi;
let harness: OutboundHarness | undefined;

beforeAll(async () => {
  await okta.start();
  publisher = await bridgePublisher();
});
afterAll(async () => {
  await okta.close();
  await publisher.close();
});
beforeEach(() => {
  okta.providers.clear();
  okta.accepted.length = 0;
  okta.api.reset();
  okta.addProvider({ issuer: BRIDGE_ISSUER, jwks_url: `${publisher.url}/jwks.json` });
});
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start(config: Record<string, unknown> = {}) {
  // 5 s: a first request on a busy machine (Okta fetching our JWKS) may take more than a second.
  harness = await outboundHarness(oktaItp, { org_url: okta.orgUrl, request_timeout: '5s', ...config });
  return harness;
}

/** The single event of the last SET Okta accepted, with its type. */
function lastAccepted() {
  const claims = okta.accepted.at(-1)?.claims as { events: Record<string, Record<string, unknown>> };
  const [type, event] = Object.entries(claims.events)[0] as [string, Record<string, unknown>];
  return { claims, type, event };
}

describe('okta-itp: what Okta receives', () => {
  it('POSTs to /security/api/v1/security-events with no Authorization header; Okta verifies and answers 202', async () => {
    const h = await start();
    const outcome = await h.attempt(
      draft('caep.session-revoked', { reason_admin: { en: 'EDR host contained' } }),
    );
    expect(outcome).toMatchObject({ ok: true, receipt: { status: 202 } });
    const request = okta.api.requests.find((r) => r.path === PATH);
    expect(request?.method).toBe('POST');
    expect(request?.headers['content-type']).toBe('application/secevent+jwt');
    expect(request?.headers['authorization']).toBeUndefined();
    expect(okta.accepted).toHaveLength(1);
    expect(okta.accepted[0]?.header).toMatchObject({
      typ: 'secevent+jwt',
      alg: 'RS256',
      kid: expect.any(String),
    });
    const { claims, type, event } = lastAccepted();
    expect(claims).toMatchObject({
      iss: BRIDGE_ISSUER,
      aud: okta.orgUrl,
      jti: expect.any(String),
      iat: expect.any(Number),
    });
    expect(type).toBe(`${CAEP}session-revoked`);
    expect(event).toEqual({
      subject: { user: dana },
      reason_admin: { en: 'EDR host contained' },
      event_timestamp: 1767225600,
    });
  });

  it('CAEP risk-level-change → user-risk-change, lowercase, previous_level from the last level sent to this org', async () => {
    const h = await start();
    const high = {
      principal: 'USER',
      current_level: 'HIGH',
      previous_level: 'LOW',
      risk_reason: 'EDR_DETECTION_HIGH',
    };
    expect((await h.attempt(draft('caep.risk-level-change', high))).ok).toBe(true);
    expect(lastAccepted()).toMatchObject({
      type: `${OKTA}user-risk-change`,
      event: {
        subject: { user: dana },
        current_level: 'high',
        previous_level: 'none',
        reason_admin: { en: 'EDR_DETECTION_HIGH' },
      },
    });
    const cleared = {
      principal: 'USER',
      current_level: 'LOW',
      reason_admin: { en: 'Alert closed as false positive' },
    };
    expect((await h.attempt(draft('caep.risk-level-change', cleared, danaOnLaptop))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({
      current_level: 'low',
      previous_level: 'high',
      subject: { user: dana },
    });
    const other = { format: 'email', email: 'lee.park@example.com' };
    expect((await h.attempt(draft('caep.risk-level-change', high, other))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({ current_level: 'high', previous_level: 'none' });

    // An aliases subject (HR sources) is sent as its email, and its level is found under it.
    const aliases = {
      format: 'aliases',
      identifiers: [
        { format: 'iss_sub', iss: 'https://hr.example', sub: 'E-4581' },
        { format: 'email', email: 'kim.ho@example.com' },
      ],
    };
    const medium = { principal: 'USER', current_level: 'MEDIUM', risk_reason: 'r' };
    expect((await h.attempt(draft('caep.risk-level-change', medium, aliases))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({ current_level: 'medium', previous_level: 'none' });
    expect((await h.attempt(draft('caep.risk-level-change', high, aliases))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({
      subject: { user: { format: 'email', email: 'kim.ho@example.com' } },
      current_level: 'high',
      previous_level: 'medium',
    });
  });

  it('a retried delivery keeps its previous_level: the level is recorded only once Okta accepted the SET', async () => {
    const h = await start();
    const event = draft('caep.risk-level-change', {
      principal: 'USER',
      current_level: 'MEDIUM',
      risk_reason: 'r',
    });
    okta.api.inject({ status: 503 }, (r) => r.path === PATH);
    expect(await h.attempt(event)).toMatchObject({ ok: false, class: 'retryable' });
    expect(h.checkpoints.size).toBe(0);
    expect((await h.attempt(event, { attempt: 1 })).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({ current_level: 'medium', previous_level: 'none' });
    expect([...h.checkpoints.values()]).toEqual([{ level: 'MEDIUM' }]);
  });

  it('DEVICE principal → device-risk-change carrying the device, whether or not devices are opted in', async () => {
    const h = await start();
    const risk = {
      principal: 'DEVICE',
      current_level: 'HIGH',
      reason_admin: { en: 'Mobile threat defence: device compromised' },
    };
    expect((await h.attempt(draft('caep.risk-level-change', risk, danaOnLaptop))).ok).toBe(true);
    expect(lastAccepted()).toMatchObject({
      type: `${OKTA}device-risk-change`,
      event: { subject: { device: laptop }, current_level: 'high', previous_level: 'none' },
    });
    expect(
      (await h.attempt(draft('caep.risk-level-change', { ...risk, current_level: 'LOW' }, danaOnLaptop))).ok,
    ).toBe(true);
    expect(lastAccepted().event).toMatchObject({ current_level: 'low', previous_level: 'high' });
  });

  it('vendor-formats §3.1 (levels low, medium, high, secure, none): once Okta accepted secure or none, that is the next previous_level', async () => {
    const h = await start();
    const caep = (level: string) =>
      draft('caep.risk-level-change', { principal: 'USER', current_level: level, risk_reason: 'r' });
    const oktaOwn = (level: string, previous: string) =>
      draft('okta.user-risk-change', {
        current_level: level,
        previous_level: previous,
        reason_admin: { en: 'Remediated by the SOC' },
      });
    expect((await h.attempt(caep('HIGH'))).ok).toBe(true);
    expect((await h.attempt(oktaOwn('secure', 'high'))).ok).toBe(true);
    expect((await h.attempt(caep('MEDIUM'))).ok).toBe(true);
    expect(lastAccepted()).toMatchObject({
      type: `${OKTA}user-risk-change`,
      event: { subject: { user: dana }, current_level: 'medium', previous_level: 'secure' },
    });
    expect((await h.attempt(oktaOwn('none', 'medium'))).ok).toBe(true);
    expect((await h.attempt(caep('HIGH'))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({ current_level: 'high', previous_level: 'none' });
    expect([...h.checkpoints.values()]).toEqual([{ level: 'HIGH' }]);
    // Per device likewise: Okta's own device-risk-change about the bare device id.
    const deviceOwn = { current_level: 'secure', previous_level: 'none', reason_admin: { en: 'Wiped' } };
    expect((await h.attempt(draft('okta.device-risk-change', deviceOwn, laptop))).ok).toBe(true);
    const deviceRisk = { principal: 'DEVICE', current_level: 'LOW', risk_reason: 'r' };
    expect((await h.attempt(draft('caep.risk-level-change', deviceRisk, danaOnLaptop))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({
      subject: { device: laptop },
      current_level: 'low',
      previous_level: 'secure',
    });
  });

  it('vendor-formats §3.1 (device-risk-change names a device): a DEVICE risk about a user identifier is refused, naming its format, and never sent', async () => {
    const h = await start();
    const risk = {
      principal: 'DEVICE',
      current_level: 'HIGH',
      reason_admin: { en: 'MTD: device compromised' },
    };
    const phone = { format: 'phone_number', phone_number: '+14155550100' };
    const account = { format: 'account', uri: 'acct:dana.lee@example.com' };
    for (const subject of [dana, phone, account]) {
      const outcome = await h.attempt(draft('caep.risk-level-change', risk, subject));
      expect(outcome, subject.format).toMatchObject({ ok: false, class: 'permanent', set: undefined });
      if (!outcome.ok) {
        expect(outcome.error.message).toBe(
          `profile okta-itp refuses this event: device-risk-change needs a device subject (an opaque id); a subject in the ${subject.format} format names a user`,
        );
      }
    }
    const own = { current_level: 'high', previous_level: 'none', reason_admin: { en: 'x' } };
    expect(await h.attempt(draft('okta.device-risk-change', own, dana))).toMatchObject({
      ok: false,
      class: 'permanent',
    });
    expect(okta.api.requests.filter((r) => r.path === PATH)).toHaveLength(0);
    // A bare opaque id is the device, as for device-compliance-change.
    expect((await h.attempt(draft('caep.risk-level-change', risk, laptop))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({ subject: { device: laptop }, current_level: 'high' });
  });

  it('the level of a DEVICE risk is kept under a device only: an opaque id, as the okta-itp profile reads it', () => {
    const risk = { principal: 'DEVICE', current_level: 'HIGH' };
    expect(riskSubject(draft('caep.risk-level-change', risk, laptop))).toEqual({
      kind: 'device',
      subject: laptop,
    });
    expect(riskSubject(draft('caep.risk-level-change', risk, dana))).toBeUndefined();
  });

  it('vendor-formats §3.1 (reason maps need an "en" entry): a reason in other languages keeps them and gets default_reason as en', async () => {
    const h = await start({ default_reason: 'Relayed from the EDR' });
    const german = { de: 'Gerät kompromittiert' };
    expect((await h.attempt(draft('caep.session-revoked', { reason_admin: german }))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({ reason_admin: { ...german, en: 'Relayed from the EDR' } });
    const risk = { principal: 'USER', current_level: 'HIGH', reason_user: { fr: 'Risque élevé' } };
    expect((await h.attempt(draft('caep.risk-level-change', risk))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({
      reason_user: { fr: 'Risque élevé', en: 'Relayed from the EDR' },
    });
    expect(lastAccepted().event).not.toHaveProperty('reason_admin');
    // An en entry is kept as it is.
    const both = { de: 'Sitzung beendet', en: 'Session ended by the SOC' };
    expect((await h.attempt(draft('caep.session-revoked', { reason_admin: both }))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({ reason_admin: both });
  });

  it('device identifiers are opt-in: device-compliance-change names the user only unless include_device', async () => {
    const compliance = { previous_status: 'compliant', current_status: 'not-compliant' };
    const off = await start();
    expect((await off.attempt(draft('caep.device-compliance-change', compliance, danaOnLaptop))).ok).toBe(
      true,
    );
    expect(lastAccepted().event).toEqual({
      subject: { user: dana },
      ...compliance,
      reason_admin: { en: 'Security signal relayed by ssf-bridge' },
      event_timestamp: 1767225600,
    });
    const deviceOnly = await off.attempt(
      draft('caep.device-compliance-change', compliance, { format: 'complex', device: laptop }),
    );
    expect(deviceOnly).toMatchObject({ ok: false, class: 'permanent' });
    if (!deviceOnly.ok) expect(deviceOnly.error.message).toMatch(/only a device, and include_device is off/);
    // A simple opaque subject of a device-compliance-change is a device id (the profile sends it as
    // the device member): it too names only a device, and is not sent while devices are off.
    const accepted = okta.accepted.length;
    const bareDevice = await off.attempt(draft('caep.device-compliance-change', compliance, laptop));
    expect(bareDevice).toMatchObject({ ok: false, class: 'permanent' });
    if (!bareDevice.ok) expect(bareDevice.error.message).toMatch(/only a device, and include_device is off/);
    expect(okta.accepted).toHaveLength(accepted);
    await off.stop();
    const on = await start({ include_device: true, default_reason: 'Relayed from Jamf' });
    expect((await on.attempt(draft('caep.device-compliance-change', compliance, danaOnLaptop))).ok).toBe(
      true,
    );
    expect(lastAccepted().event).toMatchObject({
      subject: { user: dana, device: laptop },
      reason_admin: { en: 'Relayed from Jamf' },
    });
    expect((await on.attempt(draft('caep.device-compliance-change', compliance, laptop))).ok).toBe(true);
    expect(lastAccepted().event).toMatchObject({ subject: { device: laptop } });
  });

  it('RISC account-disabled becomes session-revoked (policy session-revoked), or is refused (policy refuse)', async () => {
    const h = await start();
    expect((await h.attempt(draft('risc.account-disabled', { reason: 'hijacking' }))).ok).toBe(true);
    expect(lastAccepted()).toEqual({
      claims: expect.anything(),
      type: `${CAEP}session-revoked`,
      event: {
        subject: { user: dana },
        initiating_entity: 'admin',
        reason_admin: { en: 'The account was disabled (hijacking)' },
        event_timestamp: 1767225600,
      },
    });
    await h.stop();
    const strict = await start({ account_disabled: 'refuse' });
    const refused = await strict.attempt(draft('risc.account-disabled'));
    expect(refused).toMatchObject({ ok: false, class: 'permanent', set: undefined });
    if (!refused.ok)
      expect(refused.error.message).toBe(
        'okta-itp refuses this event: Okta has no account-disabled event and account_disabled is refuse',
      );
  });

  it('RISC credential-compromise becomes user-risk-change high', async () => {
    const h = await start();
    expect((await h.attempt(draft('risc.credential-compromise', { credential_type: 'password' }))).ok).toBe(
      true,
    );
    expect(lastAccepted()).toMatchObject({
      type: `${OKTA}user-risk-change`,
      event: {
        current_level: 'high',
        previous_level: 'none',
        reason_admin: { en: 'credential compromised (password)' },
      },
    });
  });
});

/** Every CAEP and RISC type: what reaches Okta under the default policy, or why it does not. */
const EVERY_TYPE: Record<
  string,
  { claims?: Record<string, unknown>; sentAs?: string; subject?: Record<string, unknown> }
> = {
  'caep.session-revoked': { sentAs: `${CAEP}session-revoked` },
  'caep.token-claims-change': { claims: { claims: { role: 'ro' } } },
  'caep.credential-change': { claims: { credential_type: 'password', change_type: 'update' } },
  'caep.assurance-level-change': { claims: { namespace: 'NIST-AAL', current_level: 'nist-aal2' } },
  'caep.device-compliance-change': {
    claims: { previous_status: 'compliant', current_status: 'not-compliant' },
    sentAs: `${CAEP}device-compliance-change`,
  },
  'caep.session-established': {},
  'caep.session-presented': {},
  'caep.risk-level-change': {
    claims: { principal: 'USER', current_level: 'HIGH' },
    sentAs: `${OKTA}user-risk-change`,
  },
  'risc.account-credential-change-required': {},
  'risc.account-purged': {},
  'risc.account-disabled': { sentAs: `${CAEP}session-revoked` },
  'risc.account-enabled': {},
  'risc.identifier-changed': {
    claims: { 'new-value': 'dana.park@example.com' },
    sentAs: `${RISC}identifier-changed`,
  },
  'risc.identifier-recycled': {},
  'risc.credential-compromise': {
    claims: { credential_type: 'password' },
    sentAs: `${OKTA}user-risk-change`,
  },
  'risc.opt-in': {},
  'risc.opt-out-initiated': {},
  'risc.opt-out-cancelled': {},
  'risc.opt-out-effective': {},
  'risc.recovery-activated': {},
  'risc.recovery-information-changed': {},
  'risc.sessions-revoked': {},
};

describe('okta-itp: every CAEP and RISC event type is translated or refused with a reason', () => {
  it('the table covers the whole catalog', () => {
    expect(Object.keys(EVERY_TYPE).sort()).toEqual(catalogShortNames('caep.', 'risc.').sort());
  });

  it.each(Object.entries(EVERY_TYPE))('%s', async (type, { claims = {}, sentAs, subject }) => {
    const h = await start();
    const outcome = await h.attempt(draft(type, claims, subject));
    if (sentAs) {
      expect(outcome.ok).toBe(true);
      expect(lastAccepted().type).toBe(sentAs);
    } else {
      expect(outcome).toMatchObject({ ok: false, class: 'permanent', set: undefined });
      if (!outcome.ok) expect(outcome.error.message).toMatch(/refuses this event: .{10,}|deprecates/);
      expect(okta.api.requests.filter((r) => r.path === PATH)).toHaveLength(0);
    }
  });
});

describe('okta-itp: Okta refuses', () => {
  const revoked = () => draft('caep.session-revoked', { reason_admin: { en: 'x' } });

  it('invalid_issuer when the provider is inactive, or registered under another issuer', async () => {
    const h = await start();
    for (const p of okta.providers.values()) p.status = 'INACTIVE';
    const inactive = await h.attempt(revoked());
    expect(inactive).toMatchObject({ ok: false, class: 'permanent' });
    if (!inactive.ok)
      expect(inactive.error.message).toContain('invalid_issuer (The security events provider is not active)');
    okta.providers.clear();
    okta.addProvider({ issuer: 'https://someone-else.example.com/', jwks_url: `${publisher.url}/jwks.json` });
    expect(await h.attempt(revoked())).toMatchObject({ ok: false, class: 'permanent' });
  });

  it('invalid_key for a kid the JWKS lacks; authentication_failed (credentials) for a signature that does not verify', async () => {
    const h = await start();
    okta.providers.clear();
    okta.addProvider({ issuer: BRIDGE_ISSUER, jwks_url: `${okta.orgUrl}/no-such-jwks` });
    okta.api.inject({ body: { keys: [] } }, (r) => r.path === '/no-such-jwks');
    // Okta may hold our JWKS from before a rotation: retried for the first attempts, then final.
    const firstTry = await h.attempt(revoked());
    expect(firstTry).toMatchObject({ ok: false, class: 'retryable' });
    if (!firstTry.ok) expect(firstTry.error.message).toContain('invalid_key');
    okta.api.inject({ body: { keys: [] } }, (r) => r.path === '/no-such-jwks');
    const unknownKid = await h.attempt(revoked(), { attempt: 3 });
    expect(unknownKid).toMatchObject({ ok: false, class: 'permanent' });
    if (!unknownKid.ok) expect(unknownKid.error.message).toContain('invalid_key');
    const set = await h.sign(revoked());
    const [head, body, sig] = set.jwt.split('.');
    okta.providers.clear();
    okta.addProvider({ issuer: BRIDGE_ISSUER, jwks_url: `${publisher.url}/jwks.json` });
    const tampered = { ...set, jwt: `${head}.${body}.${sig?.startsWith('A') ? 'B' : 'A'}${sig?.slice(1)}` };
    const forged = await h.connector.deliver(tampered, AbortSignal.timeout(5_000)).catch((e: unknown) => e);
    expect(forged).toMatchObject({
      authFailure: true,
      message: expect.stringContaining('authentication_failed'),
    });
  });

  it('invalid_audience when the SET is addressed to another org', async () => {
    const h = await start({ audience: 'https://other.okta.com' });
    const outcome = await h.attempt(revoked());
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    if (!outcome.ok) expect(outcome.error.message).toContain('invalid_audience');
  });

  it('a plain SSF 1.0 SET (not Okta-shaped) is refused by Okta with invalid_request and camelCase field paths', async () => {
    harness = await outboundHarness(ssfPush, {
      endpoint_url: `${okta.orgUrl}${PATH}`,
      audience: okta.orgUrl,
    });
    const risk = await harness.attempt(
      draft('caep.risk-level-change', { principal: 'USER', current_level: 'HIGH' }),
    );
    expect(risk).toMatchObject({ ok: false, class: 'permanent' });
    if (!risk.ok)
      expect(risk.error.message).toMatch(
        /invalid_request \(events: The event type .*risk-level-change is not supported\)/,
      );
    const bare = await harness.attempt(draft('caep.session-revoked'));
    if (!bare.ok) {
      expect(bare.error.message).toContain(
        'events.mediationSessionRevokedEvent.subject: The field cannot be left blank',
      );
      expect(bare.error.message).toContain('Either reasonAdmin or reasonUser is required');
    }
    expect(bare.ok).toBe(false);
  });

  it('429 waits until X-Rate-Limit-Reset (Okta sends no Retry-After); 5xx, timeouts and 401/403 are classified', async () => {
    const h = await start({ request_timeout: '400ms' });
    const reset = String(Math.floor(Date.now() / 1000) + 20);
    okta.api.inject(
      {
        status: 429,
        headers: { 'x-rate-limit-limit': '600', 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': reset },
        body: {
          errorCode: 'E0000047',
          errorSummary: 'API call exceeded rate limit due to too many requests.',
        },
      },
      (r) => r.path === PATH,
    );
    const limited = await h.attempt(revoked());
    expect(limited).toMatchObject({ ok: false, class: 'retryable' });
    if (!limited.ok) expect(limited.error.retryAfterMs).toBeGreaterThan(15_000);
    okta.api.inject({ status: 429, headers: { 'retry-after': '5' } }, (r) => r.path === PATH);
    const after = await h.attempt(revoked());
    if (!after.ok) expect(after.error.retryAfterMs).toBe(5_000);
    okta.api.inject(
      { status: 500, body: { errorCode: 'E0000009', errorSummary: 'Internal Server Error' } },
      (r) => r.path === PATH,
    );
    expect(await h.attempt(revoked())).toMatchObject({ ok: false, class: 'retryable' });
    okta.api.inject({ delayMs: 2_000, status: 202 }, (r) => r.path === PATH);
    expect(await h.attempt(revoked())).toMatchObject({ ok: false, class: 'retryable' });
    okta.api.inject(
      { status: 403, body: { errorCode: 'E0000006', errorSummary: 'forbidden' } },
      (r) => r.path === PATH,
    );
    expect(await h.attempt(revoked())).toMatchObject({ ok: false, class: 'credentials' });
    okta.api.inject(
      { status: 400, headers: { 'content-type': 'text/html' }, body: '<html>' },
      (r) => r.path === PATH,
    );
    expect(await h.attempt(revoked())).toMatchObject({ ok: false, class: 'permanent' });
    expect(await h.counter('okta_itp_sets_total', { outcome: 'retryable' })).toBe(4);
  });
});
