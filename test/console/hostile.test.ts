/**
 * Markup in what vendors, receivers and callers send is shown as text by the console: in
 * subjects, claims, a receiver's refusal (dead-letter last errors), a stream's status reason set
 * by its receiver, and audit targets. Checked in real Chromium: no element is made from it, no
 * script or handler runs, and the Content-Security-Policy never has to step in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  READ_TOKEN,
  RECEIVER_TOKEN,
  WRITE_TOKEN,
  call,
  eventually,
  ingest,
  startBridge,
  type Running,
} from '../admin/harness.ts';
import { ensureConsoleBuilt, logIn, openBrowser, type Browser } from './browser.ts';

/** Each payload marks the page if it ever becomes markup or script. */
const payload = (where: string) =>
  `<img src=x-${where} onerror="window.__xss='${where}'"><script>window.__xss='${where}'</script>` +
  `<b data-injected="${where}">${where}</b>`;
/** Short enough for a path parameter (the server takes at most 100 characters). */
const SHORT = '<img src=x-short onerror="window.__xss=1"><b data-injected>t</b>';

/**
 * Makes the next page request matching `pattern` fail with a 500, clicks the "more" button, and
 * checks the failure is shown and the button left usable; then clicks it again with the request
 * let through. `whileFailed` checks what else must hold after the failure.
 */
async function failsOnceThenLoads(
  page: Browser['page'],
  pattern: string,
  more: string,
  error: string,
  whileFailed: () => Promise<void> = async () => undefined,
): Promise<void> {
  let failNext = true;
  await page.route(pattern, (route) =>
    failNext
      ? route.fulfill({
          status: 500,
          contentType: 'application/json',
          body: JSON.stringify({ error: 'internal_error', message: 'internal error; see the bridge log' }),
        })
      : route.continue(),
  );
  try {
    await page.click(`[data-test=${more}]`);
    await page.waitForSelector(`[data-test=${error}]:has-text("internal error; see the bridge log")`);
    expect(await page.locator(`[data-test=${more}]`).isEnabled()).toBe(true);
    await whileFailed();
    failNext = false;
    await page.click(`[data-test=${more}]`);
    await page.waitForLoadState('networkidle');
  } finally {
    await page.unroute(pattern);
  }
}

describe('the console shows hostile vendor and receiver text as text', () => {
  let b: Running;
  let browser: Browser;
  let deadLetterId = 0;
  let deliveryId = 0;
  const admin = (path: string) => call(b.url, `/admin${path}`, { token: READ_TOKEN });

  beforeAll(async () => {
    ensureConsoleBuilt();
    b = await startBridge();
    browser = await openBrowser();
    // Every CSP violation is recorded: markup that got in would trip one (inline handler/script).
    await browser.context.addInitScript({
      content: `window.__violations = [];
        document.addEventListener('securitypolicyviolation', (e) =>
          window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));`,
    });

    // A receiver that refuses with markup in its answer: the dead letter's last error quotes it.
    b.receiver.status = 400;
    b.receiver.errorBody = payload('receiver-error');
    const [eventId] = await ingest(b.url, [
      {
        type: 'caep.session-revoked',
        subject: {
          format: 'complex',
          user: { format: 'opaque', id: payload('subject') },
          device: { format: 'opaque', id: 'hostile-device' },
        },
        claims: { reason_admin: { en: payload('claim') } },
      },
    ]);
    const letters = await eventually(
      () => admin('/dead-letters'),
      (r) => r.body.items.some((l: any) => l.event_id === eventId),
    );
    deadLetterId = letters.body.items.find((l: any) => l.event_id === eventId).id;
    deliveryId = deadLetterId;
    expect(JSON.stringify(letters.body)).toContain('receiver-error');
    b.receiver.status = 200;

    // A receiver's stream, with markup in its description and in the reason it pauses it for.
    const created = await call(b.url, '/ssf/streams', {
      token: RECEIVER_TOKEN,
      body: {
        delivery: { method: 'urn:ietf:rfc:8936' },
        events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
        description: payload('stream-description'),
      },
    });
    expect(created.status).toBe(201);
    const paused = await call(b.url, '/ssf/status', {
      token: RECEIVER_TOKEN,
      body: { stream_id: created.body.stream_id, status: 'paused', reason: payload('status-reason') },
    });
    expect(paused.status).toBe(200);

    // An operator's mistyped stream id is the target of the audit entry recording the refusal.
    const refused = await call(b.url, `/admin/streams/${encodeURIComponent(SHORT)}/status`, {
      token: WRITE_TOKEN,
      body: { status: 'enabled' },
    });
    expect(refused.status).toBe(404);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await b?.stop();
  });

  const visit = async (route: string, shown: string[], literal: string[] = []) => {
    const { page } = browser;
    await page.goto(`${b.url}/console/#/${route}`);
    await page.waitForSelector('main section');
    await page.waitForLoadState('networkidle');
    const text = (await page.locator('main').textContent()) ?? '';
    for (const expected of [...shown.map(payload), ...literal])
      expect([route, text]).toEqual([route, expect.stringContaining(expected)]);
    const seen = await page.evaluate(`({
      xss: window.__xss ?? null,
      violations: window.__violations,
      injected: document.querySelectorAll('img, [data-injected], main script, iframe, object, embed').length,
      scripts: document.scripts.length,
    })`);
    expect([route, seen]).toEqual([route, { xss: null, violations: [], injected: 0, scripts: 1 }]);
  };

  it('logs in', async () => {
    await logIn(browser, b.url, WRITE_TOKEN);
  });

  it('renders every page that shows vendor or receiver text without making markup of it', async () => {
    await visit('dashboard', []);
    await visit('events', ['subject']);
    await visit(`timeline?subject=hostile-device`, ['subject', 'receiver-error']);
    await visit('deliveries', ['receiver-error']);
    // The decoded SET and the event are shown as JSON, where the quotes are escaped.
    await visit(
      `delivery/${deliveryId}`,
      ['receiver-error'],
      [JSON.stringify(payload('claim')).slice(1, -1)],
    );
    await visit('dead-letters', ['subject', 'receiver-error']);
    await visit('streams', ['status-reason']);
    await visit('audit', [], [SHORT]);
    await browser.shot('hostile-text');
    // An image from the payload would have been fetched from the bridge (img-src 'self').
    expect(browser.requests.filter((url) => url.includes('/x-'))).toEqual([]);
    expect(browser.problems).toEqual([]);
    expect(deadLetterId).toBeGreaterThan(0);
  });

  it('answers a hand-edited link with a bad escape or a name of Object.prototype with a page, not a dead one', async () => {
    const { page } = browser;
    const before = browser.problems.length;
    await page.goto(`${b.url}/console/#/audit`);
    await page.waitForSelector('main section h1:has-text("Audit log")');
    // decodeURIComponent('%E0%A4%A') throws: the delivery is looked up by the text as it is.
    await page.goto(`${b.url}/console/#/delivery/%E0%A4%A`);
    await page.waitForSelector('[data-test=page-error]:has-text("no delivery")');
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      await page.goto(`${b.url}/console/#/audit`);
      await page.waitForSelector('main section h1:has-text("Audit log")');
      await page.goto(`${b.url}/console/#/${name}`);
      await page.waitForSelector('[data-test=dashboard]');
    }
    expect(browser.problems.slice(before)).toEqual([]);
  });

  it('opens the event of a timeline marker from the keyboard', async () => {
    const { page } = browser;
    await page.goto(`${b.url}/console/#/timeline?subject=hostile-device`);
    await page.waitForSelector('[data-test=timeline-entry]');
    await page.focus('svg.timeline-chart circle');
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement.dataset.test')).toBe('timeline-entry');
    await page.focus('svg.timeline-chart circle');
    await page.keyboard.press(' ');
    expect(await page.evaluate('document.activeElement.dataset.test')).toBe('timeline-entry');
  });

  it('says so when the next page of a list fails to load, and lets it be tried again', async () => {
    const { page } = browser;
    await ingest(
      b.url,
      Array.from({ length: 51 }, (_, i) => ({
        type: 'caep.session-revoked',
        subject: { format: 'opaque', id: `paging-${i}` },
      })),
    );
    await page.goto(`${b.url}/console/#/events?subject=paging-`);
    await page.waitForSelector('[data-test=events-more]');
    await failsOnceThenLoads(browser.page, '**/admin/events?*cursor=*', 'events-more', 'events-error');
    await page.waitForSelector('[data-test=events-more]', { state: 'hidden' });
    expect(await page.locator('[data-test=events] tbody tr').count()).toBe(51);
    expect(await page.locator('[data-test=events-error]').textContent()).toBe('');
  });

  it("says so when the timeline's older events fail to load, and lets them be tried again", async () => {
    const { page } = browser;
    await ingest(
      b.url,
      Array.from({ length: 51 }, (_, i) => ({
        type: 'caep.session-revoked',
        subject: { format: 'email', email: 'older@example.com' },
        id: `older-${i}`,
      })),
    );
    await page.goto(`${b.url}/console/#/timeline?subject=${encodeURIComponent('older@example.com')}`);
    await page.waitForSelector('[data-test=timeline-more]');
    const before = await page.locator('[data-test=timeline-entry]').count();
    await failsOnceThenLoads(page, '**/admin/timeline?*cursor=*', 'timeline-more', 'timeline-error', () =>
      page
        .locator('[data-test=timeline-entry]')
        .count()
        .then((n) => expect(n).toBe(before)),
    );
    // (A locator, not waitForFunction: the console's CSP refuses the eval a string predicate needs.)
    await page.locator('[data-test=timeline-entry]').nth(before).waitFor();
    expect(await page.locator('[data-test=timeline-error]').textContent()).toBe('');
  });
});
