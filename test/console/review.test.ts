/**
 * What the operator sees and is asked in real Chromium against a real bridge on loopback:
 * confirmations before actions that drop or re-send SETs, events that were never sent, timeline
 * links for issuer-scoped subjects, API failures that are not a refused token, pages that finish
 * loading out of order, focus and announcements.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
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

const TOKEN_KEY = 'ssf-bridge.admin-token';
/** What a reverse proxy answers when the bridge behind it is down. */
const PROXY_502 = {
  status: 502,
  contentType: 'text/html',
  body: '<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>',
};

describe('console review: confirmations, states, failures and focus', () => {
  let b: Running;
  let browser: Browser;
  const admin = (path: string) => call(b.url, `/admin${path}`, { token: READ_TOKEN });
  const open = async (route: string) => {
    await browser.page.goto(`${b.url}/console/#/${route}`);
    await browser.page.waitForSelector('main section h1');
  };
  const storedToken = () => browser.page.evaluate(`sessionStorage.getItem('${TOKEN_KEY}')`);

  beforeAll(async () => {
    ensureConsoleBuilt();
    b = await startBridge();
    browser = await openBrowser();
    // Every wait here is for the console on loopback: a missing element fails well before 30 s.
    browser.page.setDefaultTimeout(10_000);
    await logIn(browser, b.url, WRITE_TOKEN);
  }, 60_000);
  // Each test starts signed in, whatever the one before it left behind.
  beforeEach(async () => {
    if ((await storedToken()) !== WRITE_TOKEN) await logIn(browser, b.url, WRITE_TOKEN);
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
  });

  it('shows an event with no deliveries (held for its future time) as not sent, never as delivered', async () => {
    const { page } = browser;
    const [sent] = await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'held@example.com' } },
    ]);
    await eventually(
      () => admin(`/deliveries?event=${sent}`),
      (r) => r.body.items.length > 0 && r.body.items.every((d: any) => d.state === 'delivered'),
    );
    const [held] = await ingest(b.url, [
      {
        type: 'caep.session-revoked',
        subject: { format: 'email', email: 'held@example.com' },
        occurred_at: new Date(Date.now() + 3_600_000).toISOString(),
      },
    ]);
    expect((await admin(`/deliveries?event=${held}`)).body.items).toEqual([]);

    await open('timeline?subject=held@example.com');
    await page.waitForSelector('[data-test=timeline-entry]');
    const heldEntry = page.locator(`#ev-${held}`);
    expect(await heldEntry.getAttribute('class')).toContain('entry-none');
    expect(await heldEntry.locator('[data-test=not-sent]').textContent()).toContain('not sent');
    expect(await page.locator(`#ev-${sent}`).getAttribute('class')).toContain('entry-ok');
    expect(await page.locator('svg.timeline-chart circle.dot-ok').count()).toBe(1);
    expect(await page.locator('svg.timeline-chart circle.dot-none').count()).toBe(1);
    expect(await page.locator('[data-test=timeline-legend]').textContent()).toContain('not sent');
  });

  it('makes timeline markers buttons in a group, each named by its event and outcome', async () => {
    const { page } = browser;
    await open('timeline?subject=held@example.com');
    await page.waitForSelector('[data-test=timeline-entry]');
    const markers = page.getByRole('group', { name: 'timeline' }).getByRole('button');
    expect(await markers.count()).toBe(2);
    const names = await markers.evaluateAll((els) => els.map((el) => el.getAttribute('aria-label')));
    expect(names).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/caep\.session-revoked: delivered everywhere$/),
        expect.stringMatching(/caep\.session-revoked: not sent/),
      ]),
    );
  });

  it('links a subject to the timeline of its own identifier, never of its issuer', async () => {
    const { page } = browser;
    const iss = 'https://idp.review.example/';
    await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'iss_sub', iss, sub: 'alice-r5' } },
      { type: 'caep.session-revoked', subject: { format: 'iss_sub', iss, sub: 'bob-r5' } },
      {
        type: 'caep.session-revoked',
        subject: {
          format: 'complex',
          device: { format: 'opaque', id: 'laptop-r5' },
          user: { format: 'iss_sub', iss, sub: 'carol-r5' },
        },
      },
    ]);
    await open('events?subject=alice-r5');
    await page.waitForSelector('[data-test=subject-link]');
    await page.locator('[data-test=subject-link]').first().click();
    await page.waitForSelector('[data-test=timeline-entry]');
    expect(await page.locator('[data-test=timeline-terms]').textContent()).toBe('Matching: alice-r5');
    expect(await page.locator('[data-test=timeline-entry]').count()).toBe(1);

    // A complex subject: its user, not the issuer its members share, nor the device.
    await open('events?subject=carol-r5');
    await page.waitForSelector('[data-test=subject-link]');
    const href = await page.locator('[data-test=subject-link]').first().getAttribute('href');
    expect(new URLSearchParams(href!.split('?')[1]).get('subject')).toBe('carol-r5');
  });

  it('keeps the session when the API cannot be reached, shows why, and tries again', async () => {
    const { page } = browser;
    await open('keys');
    await page.route('**/admin/session', (route) => route.fulfill(PROXY_502));
    try {
      // A reload forgets the session, so the console asks /session again (through the proxy).
      await page.reload();
      await page.waitForSelector('[data-test=page-error]');
      const message = await page.locator('[data-test=page-error]').textContent();
      expect(message).toContain('HTTP 502');
      expect(message).toContain('not the admin API');
      expect(message).not.toMatch(/Unexpected token|JSON\.parse|session ended/);
      expect(await page.locator('#token').count()).toBe(0);
      expect(await storedToken()).toBe(WRITE_TOKEN);
    } finally {
      await page.unroute('**/admin/session');
    }
    await page.click('[data-test=retry]');
    await page.waitForSelector('main section h1:has-text("Signing keys")');
  });

  it('names an answer that is not JSON (a proxy page) instead of failing to parse it', async () => {
    const { page } = browser;
    await page.route('**/admin/events?*', (route) => route.fulfill(PROXY_502));
    try {
      await page.goto(`${b.url}/console/#/events`);
      await page.waitForSelector('main .error:has-text("HTTP 502")');
      const text = (await page.locator('main').textContent()) ?? '';
      expect(text).toContain('not the admin API');
      expect(text).not.toMatch(/Unexpected token|JSON\.parse|not valid JSON/);
    } finally {
      await page.unroute('**/admin/events?*');
    }
    expect(await storedToken()).toBe(WRITE_TOKEN);
  });

  it('still signs out when the token is refused', async () => {
    const { page } = browser;
    await page.route('**/admin/session', (route) =>
      route.fulfill({
        status: 401,
        contentType: 'application/json',
        body: JSON.stringify({ error: 'unauthorized', message: 'unknown admin token' }),
      }),
    );
    try {
      await page.reload();
      await page.waitForSelector('[data-test=login-error]:has-text("session ended")');
      expect(await storedToken()).toBeNull();
    } finally {
      await page.unroute('**/admin/session');
    }
    await logIn(browser, b.url, WRITE_TOKEN);
  });

  it('keeps a refused filter in its form, with the error under it', async () => {
    const { page } = browser;
    for (const [route, name, value] of [
      ['events?since=yesterday', 'since', 'yesterday'],
      ['deliveries?state=bogus', 'state', 'bogus'],
    ] as const) {
      await open(route);
      const error = page.locator('[data-test=list-error]');
      await error.waitFor();
      expect(await page.locator(`form.filters input[name=${name}]`).inputValue()).toBe(value);
      expect(await error.textContent()).toContain(name);
      const formFirst = await page.evaluate(
        `!!(document.querySelector('form.filters').compareDocumentPosition(
            document.querySelector('[data-test=list-error]')) & Node.DOCUMENT_POSITION_FOLLOWING)`,
      );
      expect([route, formFirst]).toEqual([route, true]);
    }
  });

  it('moves focus to the page heading after navigation', async () => {
    const { page } = browser;
    await open('dashboard');
    await page.click('nav a[href="#/events"]');
    await page.waitForSelector('main section h1:has-text("Events")');
    const focused = await page.evaluate(
      `({ tag: document.activeElement.tagName, text: document.activeElement.textContent })`,
    );
    expect(focused).toEqual({ tag: 'H1', text: 'Events' });
  });

  it('drops a slow page that finishes after the operator moved on', async () => {
    const { page } = browser;
    await open('audit');
    await page.route('**/admin/events?*', async (route) => {
      await new Promise((r) => setTimeout(r, 1_500));
      await route.continue().catch(() => undefined);
    });
    try {
      const slow = page.waitForResponse('**/admin/events?*');
      await page.evaluate(`location.hash = '#/events'`);
      await page.waitForSelector('main .loading');
      await page.evaluate(`location.hash = '#/keys'`);
      await page.waitForSelector('main section h1:has-text("Signing keys")');
      await slow;
      await page.waitForTimeout(300);
      expect(await page.locator('main section h1').textContent()).toBe('Signing keys');
    } finally {
      await page.unroute('**/admin/events?*');
    }
  });

  it('loads the dashboard once after signing in', async () => {
    const { page } = browser;
    await page.click('[data-test=logout]');
    await page.waitForSelector('#token');
    const before = browser.requests.length;
    await logIn(browser, b.url, WRITE_TOKEN);
    await page.waitForLoadState('networkidle');
    const overviews = browser.requests.slice(before).filter((url) => url.includes('/admin/overview'));
    expect(overviews).toHaveLength(1);
  });

  it("shows when an instance's last error happened, also after it recovered", async () => {
    const { page } = browser;
    b.bridge.status.set('api', 'recoverable_error', 'vendor timed out');
    b.bridge.status.set('api', 'ok');
    await page.reload();
    await page.waitForSelector('[data-test=dashboard]');
    const cell = page.locator('[data-test=last-error]');
    await cell.waitFor();
    expect(await cell.textContent()).toMatch(
      /^vendor timed out \(at \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, since recovered\)$/,
    );
  });

  it('asks before replaying dead letters, and keeps the result in a status region across the refresh', async () => {
    const { page } = browser;
    b.receiver.status = 400;
    const [id] = await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'replay-r2@example.com' } },
    ]);
    await eventually(
      () => admin('/dead-letters'),
      (r) => r.body.items.some((l: any) => l.event_id === id),
    );
    b.receiver.status = 200;
    const replays = async () => (await admin('/audit?action=dead_letters.replay')).body.items.length;
    const before = await replays();

    await open('dead-letters');
    await page.locator('[data-test=dlq-select]').first().check();
    const asked: string[] = [];
    page.once('dialog', (d) => {
      asked.push(d.message());
      void d.dismiss();
    });
    await page.click('[data-test=replay]');
    await expect.poll(() => asked.length).toBe(1);
    expect(asked[0]).toMatch(/Send 1 dead-lettered SET/);
    await page.waitForTimeout(300);
    expect(await replays()).toBe(before);
    expect(await page.locator('[data-test=dlq-status]').textContent()).toBe('');

    page.once('dialog', (d) => void d.accept());
    await page.click('[data-test=replay]');
    const status = page.locator('[data-test=dlq-status]');
    await page.waitForSelector('[data-test=dlq-status]:has-text("Replayed 1.")');
    expect(await status.getAttribute('role')).toBe('status');
    // The page is loaded again a moment later: the new one still says what was done.
    await page.evaluate(`document.querySelector('[data-test=dead-letters]').dataset.old = '1'`);
    await page.waitForSelector('[data-test=dead-letters]:not([data-old])');
    expect(await status.textContent()).toBe('Replayed 1.');
    expect(await replays()).toBe(before + 1);
  });

  it('asks before disabling a stream, saying its queued SETs are dropped, and names the stream on each action', async () => {
    const { page } = browser;
    const created = await call(b.url, '/ssf/streams', {
      token: RECEIVER_TOKEN,
      body: {
        delivery: { method: 'urn:ietf:rfc:8936' },
        events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
      },
    });
    expect(created.status).toBe(201);
    const streamId: string = created.body.stream_id;
    // The harness routes events to its webhook only, so the SETs a poll stream holds are queued
    // in the store directly, as the transmitter would queue them.
    const events = await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'queued-1@example.com' } },
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'queued-2@example.com' } },
    ]);
    const queued = await b.bridge.store.streams.enqueuePoll(
      streamId,
      events.map((eventId) => ({ jti: `${eventId}/poll`, eventId, setJwt: 'header.claims.signature' })),
      new Date(),
    );
    expect(queued).toBe(2);
    const stream = () =>
      admin('/streams').then((r) => r.body.items.find((s: any) => s.stream_id === streamId));
    expect((await stream()).poll_queue_depth).toBe(2);

    await open('streams');
    for (const action of ['Pause', 'Disable', 'Delete'])
      expect(await page.getByRole('button', { name: `${action} stream ${streamId}` }).count()).toBe(1);
    const disable = page.getByRole('button', { name: `Disable stream ${streamId}` });

    const asked: string[] = [];
    page.once('dialog', (d) => {
      asked.push(d.message());
      void d.dismiss();
    });
    await disable.click();
    await expect.poll(() => asked.length).toBe(1);
    expect(asked[0]).toContain(streamId);
    expect(asked[0]).toContain(`Its ${queued} SET(s) waiting to be polled`);
    expect(asked[0]).toContain('dropped');
    await page.waitForTimeout(300);
    expect((await stream()).status).toBe('enabled');
    expect((await stream()).poll_queue_depth).toBe(queued);

    page.once('dialog', (d) => void d.accept());
    await disable.click();
    await eventually(stream, (s) => s.status === 'disabled' && s.poll_queue_depth === 0);
  });
});
