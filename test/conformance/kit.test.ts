import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkConnectorConformance,
  type CaseResult,
  type ConformanceOptions,
  type MockServer,
} from '../../core/plugin-api/testing/index.ts';
import { z, type ConnectorDefinition } from '../../core/plugin-api/index.ts';
import { specimenPoller, type PollerFault } from './specimens/specimen-poller/index.ts';
import { specimenPusher, type PusherFault } from './specimens/specimen-pusher/index.ts';
import { SIGNATURE_HEADER, signature, specimenWebhook } from './specimens/specimen-webhook/index.ts';

const pollerDir = new URL('./specimens/specimen-poller/', import.meta.url);
const pusherDir = new URL('./specimens/specimen-pusher/', import.meta.url);

/** The alerts API as the specimen poller expects it: pages after a cursor. */
function serveAlerts(server: MockServer, records: unknown[]): void {
  const alerts = records as Array<{ id: string }>;
  server.on('GET', '/v1/alerts', (req) => {
    const start = req.query.after ? alerts.findIndex((a) => a.id === req.query.after) + 1 : 0;
    const limit = Number(req.query.limit ?? 100);
    return { body: { alerts: alerts.slice(start, start + limit), has_more: start + limit < alerts.length } };
  });
}

const pollerOptions: ConformanceOptions = {
  connectorDir: pollerDir,
  validConfig: (server: MockServer) => ({
    base_url: server.url,
    api_token: 'poller-token-5d1e',
    page_size: 2,
  }),
  poll: { serve: serveAlerts },
  metrics: [
    { name: 'alerts_read_total', value: (t) => t.records },
    { name: 'alerts_malformed_total', value: (t) => t.rejected },
  ],
};

const pusherOptions: ConformanceOptions = {
  connectorDir: pusherDir,
  validConfig: (server: MockServer) => ({ endpoint: `${server.url}/events`, api_token: 'pusher-token-9c2b' }),
  metrics: [{ name: 'sets_pushed_total', value: (t) => t.delivered }],
};

const webhookOptions: ConformanceOptions = {
  connectorDir: new URL('./specimens/specimen-webhook/', import.meta.url),
  validConfig: { token: 'webhook-token-7a3f' },
  webhook: { request: () => ({ headers: { authorization: 'Bearer webhook-token-7a3f' } }) },
};

function failures(results: CaseResult[]): Record<string, string> {
  return Object.fromEntries(results.filter((r) => r.status === 'failed').map((r) => [r.id, r.message ?? '']));
}

function poller(...faults: PollerFault[]): ConnectorDefinition {
  return specimenPoller(...faults);
}

function pusher(...faults: PusherFault[]): ConnectorDefinition {
  return specimenPusher(...faults);
}

describe('the conformance kit on sound connectors', () => {
  it('passes a sound polling connector on every inbound case', async () => {
    const results = await checkConnectorConformance(poller(), pollerOptions);
    expect(failures(results)).toEqual({});
    expect(results.map((r) => r.id)).toEqual([
      'manifest.valid',
      'manifest.id-matches-folder',
      'manifest.event-types',
      'manifest.skips',
      'manifest.capabilities',
      'config.strict',
      'config.documented',
      'config.secrets',
      'config.examples',
      'lifecycle.create-no-io',
      'lifecycle.stop-without-start',
      'lifecycle.double-stop',
      'lifecycle.restart',
      'lifecycle.stop-deadline',
      'mapping.fixtures',
      'mapping.catalog',
      'mapping.deterministic',
      'delivery.at-least-once',
      'delivery.checkpoint-after-persist',
      'delivery.stored-as-mapped',
      'delivery.skips-malformed',
      'delivery.empty-poll',
      'delivery.request-timeout',
      'delivery.abort-signal',
      'hygiene.secrets-not-logged',
      'metrics.counters',
    ]);
  });

  it('passes a sound push connector on every outbound case', async () => {
    const results = await checkConnectorConformance(pusher(), pusherOptions);
    expect(failures(results)).toEqual({});
    expect(results.map((r) => r.id)).toContain('delivery.classification');
    expect(results.map((r) => r.id)).toContain('delivery.request-timeout');
    expect(results.map((r) => r.id)).toContain('delivery.abort-signal');
    expect(results.map((r) => r.id)).toContain('lifecycle.check');
  });
});

describe('the conformance kit catches seeded faults, each in the case meant to', () => {
  it('I/O in create(): lifecycle.create-no-io', async () => {
    const failed = failures(await checkConnectorConformance(poller('io-in-create'), pollerOptions));
    expect(Object.keys(failed)).toEqual(['lifecycle.create-no-io']);
    expect(failed['lifecycle.create-no-io']).toMatch(/opened a network connection to 127\.0\.0\.1:\d+/);
  });

  it('a crash on stop without start: lifecycle.stop-without-start (and the second stop)', async () => {
    const failed = failures(
      await checkConnectorConformance(poller('crash-on-stop-without-start'), pollerOptions),
    );
    expect(Object.keys(failed)).toEqual(['lifecycle.stop-without-start', 'lifecycle.double-stop']);
    expect(failed['lifecycle.stop-without-start']).toMatch(/stop\(\) threw TypeError/);
  });

  it('a checkpoint committed before persistence: delivery.checkpoint-after-persist (and the lost records)', async () => {
    const failed = failures(
      await checkConnectorConformance(poller('checkpoint-before-persist'), pollerOptions),
    );
    expect(Object.keys(failed)).toEqual(['delivery.at-least-once', 'delivery.checkpoint-after-persist']);
    expect(failed['delivery.checkpoint-after-persist']).toMatch(
      /the checkpoint moved although persisting the events failed\nctx\.checkpoints\.set\(\) ran before ctx\.emit\(\)/,
    );
    expect(failed['delivery.at-least-once']).toMatch(/were not produced again with the same jti/);
  });

  it('a poll that throws on a malformed record and stops for good: delivery.skips-malformed', async () => {
    const failed = failures(await checkConnectorConformance(poller('throws-on-malformed'), pollerOptions));
    expect(Object.keys(failed)).toEqual([
      'delivery.stored-as-mapped',
      'delivery.skips-malformed',
      'metrics.counters',
    ]);
    // Served every fixture, the poll stops at the malformed one: what comes after it is never stored.
    expect(failed['delivery.stored-as-mapped']).toMatch(
      /^map\(\) gives caep\.session-revoked for second-session\.json, session-revoked\.json, but a poll of every fixture stored none/,
    );
    expect(failed['delivery.skips-malformed']).toMatch(
      /^a poll failed on malformed records \(malformed\.json\): malformed alert.*\n[^]*log and skip a record map\(\) refuses/,
    );
    // The served malformed record stopped the poll: nothing after it was read or counted.
    expect(failed['metrics.counters']).toMatch(/alerts_malformed_total is 0, expected 1/);
  });

  it('a wrong fixture: mapping.fixtures, naming the file and both event lists', async () => {
    const options = { ...pollerOptions, fixturesDir: new URL('wrong-fixtures/', pollerDir) };
    const failed = failures(await checkConnectorConformance(poller(), options));
    expect(Object.keys(failed)).toEqual(['mapping.fixtures']);
    expect(failed['mapping.fixtures']).toMatch(
      /^second-session\.json .*: the events differ\n {2}expected .*someone-else/,
    );
  });

  it('a request without a deadline: delivery.request-timeout', async () => {
    const failed = failures(await checkConnectorConformance(pusher('no-timeout'), pusherOptions));
    expect(Object.keys(failed)).toEqual(['delivery.request-timeout']);
    expect(failed['delivery.request-timeout']).toMatch(
      /did not finish within \d+ ms against a target that never answers/,
    );
  });

  it('a poll that ignores the signal of its run (it ends only at its request deadline): delivery.abort-signal', async () => {
    const failed = failures(await checkConnectorConformance(poller('ignores-signal'), pollerOptions));
    expect(Object.keys(failed)).toEqual(['delivery.abort-signal']);
    expect(failed['delivery.abort-signal']).toMatch(
      /^a first poll did not settle within 200 ms after the signal it was given was aborted, with the instance still running: the scheduler aborts/,
    );
  });

  it('a delivery that ignores the signal of its attempt (two concurrent sends per SET): delivery.abort-signal', async () => {
    const failed = failures(await checkConnectorConformance(pusher('ignores-signal'), pusherOptions));
    expect(Object.keys(failed)).toEqual(['delivery.abort-signal']);
    expect(failed['delivery.abort-signal']).toMatch(
      /^a first deliver\(\) did not settle within 200 ms after the signal it was given was aborted, with the instance still running: the delivery engine aborts/,
    );
  });

  it('a secret in the error a failed poll throws: hygiene.secrets-not-logged', async () => {
    const failed = failures(await checkConnectorConformance(poller('secret-in-poll-error'), pollerOptions));
    expect(Object.keys(failed)).toEqual(['hygiene.secrets-not-logged']);
    expect(failed['hygiene.secrets-not-logged']).toMatch(/the value of api_token appears in \d+ log line/);
    expect(failed['hygiene.secrets-not-logged']).not.toContain('poller-token-5d1e');
  });

  it('a secret in the message check() gives operators: hygiene.secrets-not-logged', async () => {
    const failed = failures(await checkConnectorConformance(pusher('secret-in-check'), pusherOptions));
    expect(Object.keys(failed)).toEqual(['hygiene.secrets-not-logged']);
    expect(failed['hygiene.secrets-not-logged']).toMatch(/the value of api_token appears in \d+ log line/);
    expect(failed['hygiene.secrets-not-logged']).not.toContain('pusher-token-9c2b');
  });

  it('a secret in the message check() gives operators, with lifecycle.check skipped: hygiene.secrets-not-logged', async () => {
    const base = pusher('secret-in-check');
    const skipping = {
      ...base,
      manifest: {
        ...base.manifest,
        conformance: { skip: { 'lifecycle.check': 'checked by hand in this test' } },
      },
    } as ConnectorDefinition;
    const failed = failures(await checkConnectorConformance(skipping, pusherOptions));
    expect(Object.keys(failed)).toEqual(['hygiene.secrets-not-logged']);
  });

  it('a logged secret: hygiene.secrets-not-logged, without repeating the secret', async () => {
    const failed = failures(await checkConnectorConformance(pusher('logged-secret'), pusherOptions));
    expect(Object.keys(failed)).toEqual(['hygiene.secrets-not-logged']);
    expect(failed['hygiene.secrets-not-logged']).toMatch(/the value of api_token appears in \d+ log line/);
    expect(failed['hygiene.secrets-not-logged']).not.toContain('pusher-token-9c2b');
  });
});

describe('the conformance kit reads the config schema all the way down', () => {
  /** The sound poller with `extra` fields beside its own config fields. */
  function pollerWith(extra: Record<string, z.ZodType>): ConnectorDefinition {
    const base = poller();
    const shape = (base.configSchema as z.ZodObject).shape;
    return { ...base, configSchema: z.strictObject({ ...shape, ...extra }) } as ConnectorDefinition;
  }

  it('a nested object that takes unknown keys (a misspelt nested key passes silently): config.strict', async () => {
    const nested = pollerWith({
      routing: z
        .object({ severity_floor: z.number().default(3).meta({ description: 'Lowest severity sent.' }) })
        .prefault({})
        .meta({ description: 'Routing.' }),
    });
    const failed = failures(await checkConnectorConformance(nested, pollerOptions));
    expect(failed['config.strict']).toBe(
      'objects that accept unknown keys (use z.strictObject at every level): routing',
    );
  });

  it('credential-like names in any spelling must be secrets: config.secrets', async () => {
    const plain = (description: string) => z.string().optional().meta({ description });
    const named = pollerWith({
      apiKey: plain('Key.'),
      passphrase: plain('Passphrase.'),
      hmac: plain('HMAC key.'),
      region: plain('Not a credential.'),
    });
    const failed = failures(await checkConnectorConformance(named, pollerOptions));
    const flagged = [...failed['config.secrets']!.matchAll(/^(\S+) looks like a credential/gm)].map(
      (m) => m[1],
    );
    expect(flagged).toEqual(['apiKey', 'passphrase', 'hmac']);
  });
});

describe('the conformance kit on webhook connectors', () => {
  it('passes a sound webhook connector, including the malformed-body and authentication cases', async () => {
    const results = await checkConnectorConformance(specimenWebhook(), webhookOptions);
    expect(failures(results)).toEqual({});
    expect(results.map((r) => r.id)).toEqual(
      expect.arrayContaining([
        'delivery.refuses-malformed',
        'delivery.webhook-ack-after-persist',
        'hygiene.webhook-auth',
      ]),
    );
  });

  it('a plain Error for a malformed record (a 503 the sender retries for ever): mapping.fixtures and delivery.refuses-malformed', async () => {
    const failed = failures(
      await checkConnectorConformance(specimenWebhook('plain-error-on-malformed'), webhookOptions),
    );
    expect(Object.keys(failed).sort()).toEqual(['delivery.refuses-malformed', 'mapping.fixtures']);
    expect(failed['mapping.fixtures']).toMatch(
      /^malformed\.json .*: rejected with RangeError \(retryable\); throw PermanentError/,
    );
    expect(failed['delivery.refuses-malformed']).toMatch(
      /^malformed\.json: the webhook answered 503, not 4xx: the sender will retry/,
    );
  });

  it('events the pipeline refuses: delivery.at-least-once says why ctx.emit() refused them', async () => {
    const failed = failures(
      await checkConnectorConformance(specimenWebhook('invalid-subject'), webhookOptions),
    );
    expect(failed['delivery.at-least-once']).toMatch(
      /^ctx\.emit\(\) refused the events of a fixture that maps to events: invalid events: event 0: .*email/,
    );
    expect(failed['mapping.catalog']).toMatch(/session-revoked\.json event 0: .*email/);
  });

  it('a failed persist answered 400, which the sender never retries: delivery.webhook-ack-after-persist', async () => {
    const failed = failures(
      await checkConnectorConformance(specimenWebhook('emit-failure-as-400'), webhookOptions),
    );
    expect(Object.keys(failed)).toEqual(['delivery.webhook-ack-after-persist']);
    expect(failed['delivery.webhook-ack-after-persist']).toMatch(
      /^a webhook request with session-revoked\.json was answered 400 although ctx\.emit\(\) failed .*the sender does not retry a 4xx and they are lost/,
    );
  });

  it('a webhook that takes requests without credentials: hygiene.webhook-auth', async () => {
    const failed = failures(await checkConnectorConformance(specimenWebhook('no-auth'), webhookOptions));
    expect(Object.keys(failed)).toEqual(['hygiene.webhook-auth']);
    expect(failed['hygiene.webhook-auth']).toMatch(
      /without the credentials options\.webhook\.request adds was answered 202/,
    );
  });

  it('no-auth without webhook.request fails hygiene.webhook-auth, asking what a sender adds', async () => {
    const { webhook: _given, ...withoutRequest } = webhookOptions;
    const results = await checkConnectorConformance(specimenWebhook('no-auth'), withoutRequest);
    const failed = failures(results);
    expect(Object.keys(failed)).toEqual(['hygiene.webhook-auth']);
    expect(failed['hygiene.webhook-auth']).toMatch(
      /^say what a legitimate sender adds to a webhook request .* in options\.webhook\.request\(body, rawBody\)/,
    );
    expect(failed['hygiene.webhook-auth']).toMatch(/skips hygiene\.webhook-auth in the manifest/);
  });

  it('a webhook that takes wrong credentials (it checks only that a token is there): hygiene.webhook-auth', async () => {
    const failed = failures(
      await checkConnectorConformance(specimenWebhook('presence-only'), webhookOptions),
    );
    expect(Object.keys(failed)).toEqual(['hygiene.webhook-auth']);
    expect(failed['hygiene.webhook-auth']).toBe(
      'a webhook request with the credentials options.webhook.request adds, their values changed, was answered 202; ' +
        'refuse it with 401 (no or wrong credentials) or 403, before reading the body\n' +
        'a webhook request with the credentials options.webhook.request adds, their values changed, emitted events',
    );
  });
});

describe('the conformance kit on connectors that poll and take webhooks', () => {
  const signedOptions: ConformanceOptions = {
    ...pollerOptions,
    validConfig: (server: MockServer) => ({
      base_url: server.url,
      api_token: 'poller-token-5d1e',
      webhook_token: 'poller-webhook-token-77c1',
      page_size: 2,
    }),
    webhook: { request: () => ({ headers: { authorization: 'Bearer poller-webhook-token-77c1' } }) },
  };

  it('passes one whose webhook checks its token, running the webhook cases beside the poll cases', async () => {
    const results = await checkConnectorConformance(poller('webhook'), signedOptions);
    expect(failures(results)).toEqual({});
    expect(results.map((r) => r.id)).toEqual(
      expect.arrayContaining([
        'delivery.skips-malformed',
        'delivery.refuses-malformed',
        'delivery.webhook-ack-after-persist',
        'hygiene.webhook-auth',
      ]),
    );
  });

  it('a webhook that answers 202 before its events are persisted, beside a sound poll: delivery.webhook-ack-after-persist', async () => {
    const results = await checkConnectorConformance(poller('webhook-acks-before-emit'), signedOptions);
    const failed = failures(results);
    // The poll's own at-least-once cases pass: only the webhook loses events.
    expect(Object.keys(failed)).toEqual(['delivery.webhook-ack-after-persist']);
    expect(results.find((r) => r.id === 'delivery.at-least-once')?.status).toBe('passed');
    expect(failed['delivery.webhook-ack-after-persist']).toMatch(
      /^a webhook request with second-session\.json was answered 202 although ctx\.emit\(\) failed .*the sender believes the events were taken and they are lost; let the error of ctx\.emit\(\) propagate \(the bridge answers 503 with Retry-After\)/,
    );
    expect(failed['delivery.webhook-ack-after-persist']).toMatch(
      /\na webhook request with second-session\.json was answered 202 before ctx\.emit\(\) had persisted its events \(the kit held the persist\).*; await ctx\.emit\(events\), then answer$/,
    );
  });

  it('a webhook that takes any request, beside a sound poll: hygiene.webhook-auth', async () => {
    const failed = failures(
      await checkConnectorConformance(poller('unauthenticated-webhook'), signedOptions),
    );
    expect(Object.keys(failed)).toEqual(['hygiene.webhook-auth']);
    expect(failed['hygiene.webhook-auth']).toMatch(
      /^a webhook request without the credentials options\.webhook\.request adds was answered 202/,
    );
  });

  it('without webhook.request, a request bare of any credentials is still sent: hygiene.webhook-auth', async () => {
    const failed = failures(
      await checkConnectorConformance(poller('unauthenticated-webhook'), pollerOptions),
    );
    expect(Object.keys(failed).sort()).toEqual([
      'delivery.webhook-ack-after-persist',
      'hygiene.webhook-auth',
    ]);
    expect(failed['hygiene.webhook-auth']).toMatch(
      /^a webhook request without any credentials was answered 202; refuse it with 401 .*give options\.webhook\.request/,
    );
    expect(failed['hygiene.webhook-auth']).toMatch(/emitted events/);
    // The sound one passes hygiene.webhook-auth without the option: its bare request is refused.
    expect(Object.keys(failures(await checkConnectorConformance(poller('webhook'), pollerOptions)))).toEqual([
      'delivery.webhook-ack-after-persist',
    ]);
  });

  it('without webhook.request, delivery.webhook-ack-after-persist asks for it, or for a skip with the reason', async () => {
    const failed = failures(await checkConnectorConformance(poller('webhook'), pollerOptions));
    expect(failed['delivery.webhook-ack-after-persist']).toMatch(
      /^this connector also takes webhooks: give options\.webhook\.request\(body, rawBody\) .*or skip delivery\.webhook-ack-after-persist in the manifest with the reason/,
    );
    const skipped = {
      ...poller('webhook'),
      manifest: {
        ...poller('webhook').manifest,
        conformance: {
          skip: {
            'delivery.webhook-ack-after-persist': 'the vendor signs its webhooks with a key we cannot mint',
          },
        },
      },
    } as ConnectorDefinition;
    const results = await checkConnectorConformance(skipped, pollerOptions);
    expect(failures(results)).toEqual({});
    expect(results.find((r) => r.id === 'delivery.webhook-ack-after-persist')?.status).toBe('skipped');
  });
});

describe('the reference section of a connector package', () => {
  it('a package whose README.md lost its generated section (npm run docs never checked): docs.readme-current', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'specimen-poller-'));
    try {
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'ssf-bridge-connector-specimen-poller' }),
      );
      writeFileSync(join(dir, 'README.md'), '# Specimen poller\n\nPolls an alerts API.\n');
      const options = { ...pollerOptions, connectorDir: dir, fixturesDir: new URL('fixtures/', pollerDir) };
      const results = await checkConnectorConformance(poller(), options);
      expect(failures(results)).toEqual({
        'docs.readme-current': expect.stringMatching(
          /README\.md has no generated reference section .*; run `npm run docs` to add it$/,
        ),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('intake capabilities', () => {
  function withCapabilities(
    definition: ConnectorDefinition,
    capabilities: Record<string, boolean>,
  ): ConnectorDefinition {
    return { ...definition, manifest: { ...definition.manifest, capabilities } } as ConnectorDefinition;
  }

  it('refuses an inbound connector that declares no intake at all', async () => {
    const failed = failures(await checkConnectorConformance(withCapabilities(poller(), {}), pollerOptions));
    expect(failed['manifest.capabilities']).toMatch(
      /an inbound connector polls, receives webhooks or listens on its own sockets \(capabilities\.stream\): declare one/,
    );
  });

  it('counts a listener (capabilities.stream) as an intake, and asks for a way to send it records', async () => {
    const failed = failures(
      await checkConnectorConformance(
        withCapabilities(poller(), { poll: true, stream: true }),
        pollerOptions,
      ),
    );
    expect(failed['manifest.capabilities']).toBeUndefined();
    const listener = failures(
      await checkConnectorConformance(withCapabilities(poller(), { stream: true }), pollerOptions),
    );
    expect(listener['manifest.capabilities']).not.toMatch(/declare one/);
    expect(listener['manifest.capabilities']).toMatch(
      /a listening connector gives options\.stream\.send, so the kit can send it records/,
    );
  });
});

describe('skips', () => {
  function withSkips(definition: ConnectorDefinition, skip: Record<string, string>): ConnectorDefinition {
    return {
      ...definition,
      manifest: { ...definition.manifest, conformance: { skip } },
    } as ConnectorDefinition;
  }

  it('skip a case whose reason the manifest gives', async () => {
    const definition = withSkips(poller(), {
      'delivery.empty-poll': 'the vendor API never answers an empty page',
    });
    const results = await checkConnectorConformance(definition, pollerOptions);
    expect(results.find((r) => r.id === 'delivery.empty-poll')).toEqual({
      id: 'delivery.empty-poll',
      status: 'skipped',
      message: 'the vendor API never answers an empty page',
    });
    expect(failures(results)).toEqual({});
  });

  it('run a delivery case a stable connector skips, and report the skip', async () => {
    const definition = withSkips(pusher('no-timeout'), {
      'delivery.request-timeout': 'our receiver always answers',
    });
    const failed = failures(await checkConnectorConformance(definition, pusherOptions));
    expect(Object.keys(failed)).toEqual(['manifest.skips', 'delivery.request-timeout']);
    expect(failed['manifest.skips']).toMatch(/a stable connector cannot skip delivery cases/);
  });

  it('run a case skipped without a real reason, or an unknown case, and report both', async () => {
    const definition = withSkips(poller(), {
      'delivery.empty-poll': 'n/a',
      'delivery.everything': 'not a case at all',
    });
    const results = await checkConnectorConformance(definition, pollerOptions);
    expect(results.find((r) => r.id === 'delivery.empty-poll')?.status).toBe('passed');
    expect(failures(results)['manifest.skips']).toMatch(
      /"delivery\.empty-poll": the reason must say why in at least 10 characters\n"delivery\.everything" is not a conformance case/,
    );
  });
});

describe('the conformance kit checks what a running connector does, not only its definition', () => {
  it('a poll that drops one type and renames another, map() right all along: delivery.stored-as-mapped', async () => {
    const failed = failures(await checkConnectorConformance(poller('drops-and-renames'), pollerOptions));
    expect(Object.keys(failed)).toEqual(['delivery.stored-as-mapped']);
    expect(failed['delivery.stored-as-mapped']).toBe(
      'a poll of every fixture emitted 2 event(s) of type risc.account-purged (records a-2, a-1), which ' +
        'manifest.emits does not list: receivers subscribed to what the manifest declares\n' +
        'map() gives caep.session-revoked for second-session.json, session-revoked.json, but a poll of every ' +
        'fixture stored none: the running connector drops or renames what its mapping produces\n' +
        'map() gives risc.account-disabled for user-suspended.json, but a poll of every fixture stored none: ' +
        'the running connector drops or renames what its mapping produces',
    );
  });

  it('a poll that saves the last cursor with the first page, passing a failed first save: delivery.checkpoint-after-persist', async () => {
    const failed = failures(await checkConnectorConformance(poller('cursor-ahead'), pollerOptions));
    expect(Object.keys(failed)).toEqual(['delivery.checkpoint-after-persist']);
    expect(failed['delivery.checkpoint-after-persist']).toMatch(
      /^with save 2 of the 2 a clean poll makes failed, the polls after it never stored 2 of the 3 events a clean poll stores \(records a-1, a-5\): a checkpoint saved earlier ran ahead of the events it came with/,
    );
  });

  it('a client that asks for a deadline of weeks (the kit shortens it in every case): delivery.request-timeout', async () => {
    const failed = failures(await checkConnectorConformance(poller('huge-timeout'), pollerOptions));
    expect(Object.keys(failed)).toEqual(['delivery.request-timeout']);
    expect(failed['delivery.request-timeout']).toMatch(
      /^ctx\.http\.create\(\) asked for a deadline of 2000000000 ms \(given to ctx\.http\.create\(\)\), above the ceiling of 300000 ms/,
    );
    expect(failed['delivery.request-timeout']).toMatch(
      /\nthe request GET \/v1\/alerts asked for a deadline of 2000000000 ms \(its client's timeoutMs\)/,
    );
  });

  it('a client that ignores the configured request_timeout: delivery.request-timeout', async () => {
    const failed = failures(
      await checkConnectorConformance(pusher('ignores-request-timeout'), pusherOptions),
    );
    expect(Object.keys(failed)).toEqual(['delivery.request-timeout']);
    expect(failed['delivery.request-timeout']).toMatch(
      /^the request POST http:\/\/127\.0\.0\.1:\d+\/events asked for a deadline of 30000 ms \(the default of a client created without timeoutMs\), above request_timeout \(the kit set it to 7s\): pass the configured request timeout/,
    );
  });

  it('a secret put into the events the poll emits (signed into SETs): hygiene.secrets-not-logged', async () => {
    const failed = failures(await checkConnectorConformance(poller('secret-in-event'), pollerOptions));
    expect(Object.keys(failed)).toEqual(['hygiene.secrets-not-logged']);
    expect(failed['hygiene.secrets-not-logged']).toMatch(
      /^the value of api_token appears in \d+ event\(s\) handed to ctx\.emit\(\): it would be signed into SETs and sent to every receiver/,
    );
    expect(failed['hygiene.secrets-not-logged']).not.toContain('poller-token-5d1e');
  });

  it('a credential the schema cannot name (a header in a record of headers), logged: hygiene.secrets-not-logged', async () => {
    const options: ConformanceOptions = {
      ...pusherOptions,
      validConfig: (server: MockServer) => ({
        endpoint: `${server.url}/events`,
        api_token: 'pusher-token-9c2b',
        headers: { 'x-tenant': 'acme', authorization: 'Basic cHVzaGVyOmV4dHJhLTNmOWE=' },
      }),
    };
    expect(failures(await checkConnectorConformance(pusher(), options))).toEqual({});
    const failed = failures(await checkConnectorConformance(pusher('logs-headers'), options));
    expect(Object.keys(failed)).toEqual(['hygiene.secrets-not-logged']);
    expect(failed['hygiene.secrets-not-logged']).toMatch(
      /^the value of headers\.authorization appears in \d+ log line\(s\), output\(s\) or error message\(s\)$/m,
    );
    expect(failed['hygiene.secrets-not-logged']).not.toMatch(/x-tenant|cHVzaGVy/);
  });

  it('a declared type the destination refuses: delivery.deliver names the type and the error', async () => {
    const failed = failures(await checkConnectorConformance(pusher('refuses-second-type'), pusherOptions));
    expect(Object.keys(failed)).toEqual(['delivery.deliver']);
    expect(failed['delivery.deliver']).toMatch(
      /^risc\.account-disabled: deliver\(\) failed against a target that accepts: PermanentError: this receiver does not act on https:\/\/schemas\.openid\.net\/secevent\/risc\/event-type\/account-disabled\nevery type manifest\.accepts lists must be delivered/,
    );
  });
  it('a declared type refused by a config switch it names is accepted only if turning the switch delivers it: delivery.deliver', async () => {
    // The sound pusher refuses caep.credential-change while push_credential_changes is off (its default).
    const sound = await checkConnectorConformance(pusher(), pusherOptions);
    expect(sound.find((r) => r.id === 'delivery.deliver')?.status).toBe('passed');
    const failed = failures(await checkConnectorConformance(pusher('switch-ignored'), pusherOptions));
    expect(Object.keys(failed)).toEqual(['delivery.deliver']);
    expect(failed['delivery.deliver']).toMatch(
      /^caep\.credential-change: deliver\(\) failed against a target that accepts: PermanentError: credential changes are not pushed: push_credential_changes is off; with push_credential_changes: true it still fails: deliver\(\) failed/,
    );
  });
});

describe('the conformance kit on what a webhook reads and answers', () => {
  const SIGNING_SECRET = 'webhook-signing-secret-0d4c';
  const hmacOptions: ConformanceOptions = {
    ...webhookOptions,
    validConfig: { token: 'webhook-token-7a3f', signing_secret: SIGNING_SECRET },
    webhook: {
      request: (_body, rawBody) => ({ headers: { [SIGNATURE_HEADER]: signature(SIGNING_SECRET, rawBody) } }),
    },
  };

  it('passes a webhook that checks an HMAC over the bytes it received', async () => {
    expect(failures(await checkConnectorConformance(specimenWebhook(), hmacOptions))).toEqual({});
  });

  it('an HMAC checked over JSON.stringify(req.body), which only a compact body matches: hygiene.webhook-auth', async () => {
    const failed = failures(
      await checkConnectorConformance(specimenWebhook('signs-parsed-body'), hmacOptions),
    );
    expect(Object.keys(failed)).toEqual(['hygiene.webhook-auth']);
    expect(failed['hygiene.webhook-auth']).toBe(
      'a webhook request with session-revoked.json, signed as options.webhook.request signs it over its JSON ' +
        'body indented (rawBody is not JSON.stringify(body)), was answered 401, and 202 compact: check the ' +
        'signature over req.rawBody, the bytes received, never over JSON.stringify(req.body)',
    );
  });

  it('a webhook that reads the body before checking it (a TypeError, a 5xx): delivery.refuses-malformed', async () => {
    const failed = failures(
      await checkConnectorConformance(specimenWebhook('reads-body-unchecked'), webhookOptions),
    );
    expect(Object.keys(failed)).toEqual(['delivery.refuses-malformed']);
    const lines = failed['delivery.refuses-malformed']!.split('\n');
    expect(lines).toEqual([
      expect.stringMatching(
        /^an empty body \(application\/json\) was answered 503, not 4xx: the sender retries a body that can never succeed/,
      ),
      expect.stringMatching(/^a text\/plain body that is not JSON \(text\/plain\) was answered 503, not 4xx/),
      expect.stringMatching(/^the JSON body null \(application\/json\) was answered 503, not 4xx/),
    ]);
  });

  it('a secret in a header of the answer to an unauthenticated request: hygiene.secrets-not-logged', async () => {
    const failed = failures(
      await checkConnectorConformance(specimenWebhook('secret-in-response-header'), webhookOptions),
    );
    expect(Object.keys(failed)).toEqual(['hygiene.secrets-not-logged']);
    expect(failed['hygiene.secrets-not-logged']).toMatch(/^the value of token appears in \d+ log line/);
    expect(failed['hygiene.secrets-not-logged']).not.toContain('webhook-token-7a3f');
  });

  it('a polling connector whose valid config takes no webhooks (every request 404): hygiene.webhook-auth', async () => {
    const failed = failures(await checkConnectorConformance(poller('webhook-off-404'), pollerOptions));
    expect(Object.keys(failed)).toEqual(['delivery.webhook-ack-after-persist', 'hygiene.webhook-auth']);
    expect(failed['hygiene.webhook-auth']).toBe(
      'a webhook request without any credentials was answered 404: the instance takes no webhooks with ' +
        'options.validConfig, so their authentication goes unchecked; give a validConfig that takes webhooks ' +
        'and options.webhook.request, or skip hygiene.webhook-auth in the manifest with the reason',
    );
  });
});
