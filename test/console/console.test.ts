import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  READ_TOKEN,
  WRITE_TOKEN,
  call,
  eventually,
  ingest,
  startBridge,
  type Running,
} from '../admin/harness.ts';
import { ensureConsoleBuilt, logIn, openBrowser, type Browser } from './browser.ts';

describe('web console in headless Chromium', () => {
  let b: Running;
  let browser: Browser;
  const admin = (path: string) => call(b.url, `/admin${path}`, { token: READ_TOKEN });
  const deliveredAll = (eventId: string) =>
    eventually(
      () => admin(`/deliveries?event=${eventId}`),
      (r) => r.body.items.length > 0 && r.body.items.every((d: any) => d.state === 'delivered'),
    );

  beforeAll(async () => {
    ensureConsoleBuilt();
    b = await startBridge();
    browser = await openBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
  });

  const login = (token: string) => logIn(browser, b.url, token);

  it('serves the console with a strict Content-Security-Policy', async () => {
    const res = await fetch(`${b.url}/console/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).not.toMatch(/<script>|style="/);
  });

  it('refuses a wrong token at login', async () => {
    const { page } = browser;
    await page.goto(`${b.url}/console/`);
    await page.fill('#token', 'not-an-admin-token-at-all');
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-test=login-error]:has-text("not an admin token")');
    await browser.shot('01-login-refused');
  });

  it('logs in, finds a subject timeline and opens a delivery with its decoded SET', async () => {
    const [first] = await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'grace@example.com' } },
    ]);
    const [second] = await ingest(b.url, [
      {
        type: 'caep.device-compliance-change',
        subject: {
          format: 'complex',
          user: { format: 'email', email: 'grace@example.com' },
          device: { format: 'opaque', id: 'mbp-9' },
        },
        claims: { previous_status: 'compliant', current_status: 'not-compliant' },
      },
    ]);
    await deliveredAll(first!);
    await deliveredAll(second!);

    await login(WRITE_TOKEN);
    const { page } = browser;
    await page.waitForSelector('[data-test=readiness]:has-text("Ready")');
    expect(await page.locator('[data-test=instances] tbody tr').count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('svg.chart rect.bar-accepted').count()).toBeGreaterThan(0);
    await browser.shot('02-dashboard');

    await page.click('a[href="#/timeline"]');
    await page.fill('input[name=subject]', 'grace@example.com');
    await page.click('[data-test=timeline-search] button');
    await page.waitForSelector('[data-test=timeline-entry]');
    expect(await page.locator('[data-test=timeline-entry]').count()).toBe(2);
    expect(await page.locator('svg.timeline-chart circle.dot-ok').count()).toBe(2);
    await browser.shot('03-timeline');

    await page.locator('[data-test=timeline-entry]').first().locator('[data-test=delivery-link]').click();
    await page.waitForSelector('[data-test=set-claims] pre');
    const claims = JSON.parse((await page.locator('[data-test=set-claims] pre').textContent()) ?? '{}');
    expect(
      claims.events['https://schemas.openid.net/secevent/caep/event-type/device-compliance-change'],
    ).toEqual(expect.objectContaining({ current_status: 'not-compliant' }));
    expect(JSON.stringify(claims)).toContain('grace@example.com');
    expect(await page.locator('[data-test=answer]').textContent()).toContain('accepted');
    await browser.shot('04-delivery');
  });

  it('replays a dead letter from the console and sees it delivered', async () => {
    b.receiver.status = 400;
    const [id] = await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'heidi@example.com' } },
    ]);
    await eventually(
      () => admin('/dead-letters'),
      (r) => r.body.items.some((l: any) => l.event_id === id),
    );
    b.receiver.status = 200;
    const { page } = browser;
    await page.goto(`${b.url}/console/#/dead-letters`);
    await page.waitForSelector('[data-test=dead-letter-table]');
    await browser.shot('05-dead-letters');
    await page.locator('[data-test=dlq-select]').first().check();
    // A replay re-sends the SETs, so the console asks first.
    page.once('dialog', (dialog) => void dialog.accept());
    await page.click('[data-test=replay]');
    await page.waitForSelector('[data-test=dlq-status]:has-text("Replayed 1.")');
    await deliveredAll(id!);

    await page.goto(`${b.url}/console/#/timeline?subject=heidi@example.com`);
    await page.waitForSelector('[data-test=timeline-entry].entry-ok');
    await browser.shot('06-replayed-delivered');
    const audit = await admin('/audit?action=dead_letters.replay');
    expect(audit.body.items[0].actor).toBe('operator');
  });

  it('gives a read token no write actions, and no page reaches outside the bridge', async () => {
    const { page } = browser;
    await page.click('[data-test=logout]');
    await login(READ_TOKEN);
    await page.goto(`${b.url}/console/#/dead-letters`);
    await page.waitForSelector('[data-test=dead-letters]');
    expect(await page.locator('[data-test=replay]').isDisabled()).toBe(true);
    for (const route of ['events', 'deliveries', 'streams', 'keys', 'audit', 'dashboard']) {
      await page.goto(`${b.url}/console/#/${route}`);
      await page.waitForSelector('main section');
      await browser.shot(`07-${route}`);
    }
    expect(await page.locator('[data-test=rotate]').count()).toBe(0);
    const outside = browser.requests.filter(
      (url) => !url.startsWith(`${b.url}/`) && !url.startsWith('data:'),
    );
    expect(outside).toEqual([]);
    expect(browser.requests.length).toBeGreaterThan(10);
    expect(browser.problems).toEqual([]);
  });
});
