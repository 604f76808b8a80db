/** Inbound cases: fixture mapping, catalog validity, determinism and at-least-once delivery. */
import { setTimeout as delay } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { classOf } from '../errors.ts';
import { eventCatalog } from '../../ssf/index.ts';
import type { EventDraft, InboundDefinition, InboundResponse, MappingResult } from '../types.ts';
import { fail, type SuiteContext } from './context.ts';
import { checkDraft, listAllows } from './events.ts';
import { expectsEvents, expectsIgnored, expectsRejected, type Fixture } from './fixtures.ts';
import { KIT_MARKER_HEADER, KIT_REQUEST_TIMEOUT_MS, within, type KitInstance } from './harness.ts';
import { startWithin, stopWithin } from './lifecycle-checks.ts';
import { requestedTimeoutProblems, timeoutPlan } from './timeouts.ts';
import { driveTraffic, driveWebhook } from './traffic.ts';

/** One poll of the loopback mock must finish well within this. */
const POLL_BUDGET_MS = 10_000;
/** A webhook call must reach ctx.emit() or answer within this against the loopback mock. */
const WEBHOOK_BUDGET_MS = 5_000;
/**
 * How long the kit waits, the persist held, for an answer that does not wait for ctx.emit(), and,
 * after an answer, for events emitted once the request was answered.
 */
const EARLY_ANSWER_WAIT_MS = 250;

type Mapped = { ok: true; result: MappingResult } | { ok: false; error: unknown };

function mapper(ctx: SuiteContext): NonNullable<InboundDefinition['map']> {
  const map = (ctx.definition as InboundDefinition).map;
  if (typeof map !== 'function') {
    fail('define map(record, config, state) on the definition: fixtures are checked through it');
  }
  return map;
}

function runMap(ctx: SuiteContext, input: unknown): Mapped {
  const map = mapper(ctx);
  try {
    return { ok: true, result: map(structuredClone(input), ctx.parsedConfig() as never) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Events as JSON, the form fixtures are written in (dates become strings). */
function asJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null));
}

function fixtureProblem(ctx: SuiteContext, fixture: Fixture): string | undefined {
  const mapped = runMap(ctx, fixture.input);
  const at = `${fixture.name}.json (${fixture.description})`;
  if (expectsRejected(fixture)) {
    if (mapped.ok)
      return `${at}: expected a rejection containing "${fixture.expect.rejected}", but it mapped`;
    const message = mapped.error instanceof Error ? mapped.error.message : String(mapped.error);
    if (!(mapped.error instanceof Error))
      return `${at}: rejected with a non-Error value; throw an Error with a clear message`;
    if (classOf(mapped.error) !== 'permanent') {
      return (
        `${at}: rejected with ${mapped.error.name} (${classOf(mapped.error)}); throw PermanentError so the ` +
        'bridge refuses the record with a 4xx or records a dead letter, instead of retrying it for ever'
      );
    }
    return message.includes(fixture.expect.rejected)
      ? undefined
      : `${at}: the rejection message\n  ${message}\ndoes not contain\n  ${fixture.expect.rejected}`;
  }
  if (!mapped.ok) {
    const message = mapped.error instanceof Error ? mapped.error.message : String(mapped.error);
    return `${at}: map() threw ${message}`;
  }
  if (expectsIgnored(fixture)) {
    const { ignored, events } = mapped.result;
    if (events.length > 0 || typeof ignored !== 'string')
      return `${at}: expected it to be ignored, got ${events.length} event(s)`;
    return ignored.includes(fixture.expect.ignored)
      ? undefined
      : `${at}: the ignore reason "${ignored}" does not contain "${fixture.expect.ignored}"`;
  }
  const actual = asJson(mapped.result.events);
  const expected = asJson(expectsEvents(fixture) ? fixture.expect.events : []);
  return isDeepStrictEqual(actual, expected)
    ? undefined
    : `${at}: the events differ\n  expected ${JSON.stringify(expected)}\n  actual   ${JSON.stringify(actual)}`;
}

export function mappingFixtures(ctx: SuiteContext): void {
  mapper(ctx);
  const { fixtures, problems } = ctx.fixtures();
  const all = [...problems];
  if (!fixtures.some(expectsEvents))
    all.push('add a fixture that maps to events ({"expect": {"events": [...]}})');
  if (!fixtures.some(expectsRejected))
    all.push('add a fixture with malformed input ({"expect": {"rejected": "..."}})');
  for (const fixture of fixtures) {
    const problem = fixtureProblem(ctx, fixture);
    if (problem) all.push(problem);
  }
  if (all.length > 0) fail(all.join('\n'));
}

function mappedEvents(ctx: SuiteContext): Array<{ fixture: Fixture; events: EventDraft[] }> {
  return ctx
    .fixtures()
    .fixtures.filter(expectsEvents)
    .map((fixture) => {
      const mapped = runMap(ctx, fixture.input);
      return { fixture, events: mapped.ok ? mapped.result.events : [] };
    });
}

export function mappingCatalog(ctx: SuiteContext): void {
  const problems: string[] = [];
  const instanceId = `kit-${ctx.manifest.id}`;
  for (const { fixture, events } of mappedEvents(ctx)) {
    events.forEach((event, i) => {
      const at = `${fixture.name}.json event ${i}`;
      const checked = checkDraft(event, instanceId);
      if (!checked.ok) problems.push(`${at}: ${checked.message}`);
      if (!listAllows(ctx.manifest.emits, event.type))
        problems.push(`${at}: ${event.type} is not listed in manifest.emits`);
    });
  }
  if (problems.length > 0) fail(problems.join('\n'));
}

export function mappingDeterministic(ctx: SuiteContext): void {
  const problems: string[] = [];
  const instanceId = `kit-${ctx.manifest.id}`;
  for (const { fixture, events } of mappedEvents(ctx)) {
    const again = runMap(ctx, fixture.input);
    const second = again.ok ? again.result.events : [];
    const jtis = (list: EventDraft[]) =>
      list.map((e) => checkDraft(e, instanceId)).map((c) => (c.ok ? c.built.jti : c.message));
    if (
      !isDeepStrictEqual(asJson(events), asJson(second)) ||
      !isDeepStrictEqual(jtis(events), jtis(second))
    ) {
      problems.push(
        `${fixture.name}.json: mapping the same record twice gave different events (random ids or clock reads?)`,
      );
    }
  }
  if (problems.length > 0) fail(problems.join('\n'));
}

/** Inputs of the fixtures a vendor API would serve: those that map to events or are ignored. */
function servedRecords(ctx: SuiteContext): unknown[] {
  return ctx
    .fixtures()
    .fixtures.filter((f) => !expectsRejected(f))
    .map((f) => f.input);
}

function polls(ctx: SuiteContext): boolean {
  return Boolean(ctx.manifest.capabilities.poll);
}

function pollOptions(ctx: SuiteContext) {
  const poll = ctx.options.poll;
  if (!poll)
    fail(
      'a polling connector gives options.poll.serve(server, records), serving records as its vendor API does',
    );
  return poll;
}

async function pollOnce(ctx: SuiteContext, instance: KitInstance): Promise<void> {
  const run = await instance.runTask(POLL_BUDGET_MS, ctx.options.poll?.task);
  if (!run.settled) fail(`a poll did not finish within ${POLL_BUDGET_MS} ms against the loopback mock API`);
}

/** One unit of inbound work that emits the fixture events: a poll, or a webhook call. */
async function produce(ctx: SuiteContext, instance: KitInstance): Promise<number | undefined> {
  if (polls(ctx)) {
    await pollOnce(ctx, instance);
    return undefined;
  }
  const fixture = ctx.fixtures().fixtures.find(expectsEvents);
  if (!fixture) fail('add a fixture that maps to events: it is sent as the webhook body');
  const response = await ctx.webhook(instance, fixture.input);
  return response.status;
}

async function startProducer(ctx: SuiteContext): Promise<KitInstance> {
  ctx.resetServer();
  if (polls(ctx)) pollOptions(ctx).serve(ctx.server, servedRecords(ctx));
  const instance = ctx.instance();
  await startWithin(instance);
  return instance;
}

export async function atLeastOnce(ctx: SuiteContext): Promise<void> {
  const instance = await startProducer(ctx);
  instance.sink.failNextPersist();
  const firstStatus = await produce(ctx, instance);
  const failed = instance.sink.attempts.find((a) => a.outcome === 'failed');
  const refused = instance.sink.attempts.find((a) => a.outcome === 'invalid');
  if (refused?.refusal)
    fail(`ctx.emit() refused the events of a fixture that maps to events: ${refused.refusal}`);
  if (!failed || failed.jtis.length === 0) {
    fail(
      polls(ctx)
        ? 'the first poll emitted no events: options.poll.serve must serve the fixture records'
        : 'the webhook call emitted no events for a fixture that maps to events',
    );
  }
  if (firstStatus !== undefined && firstStatus >= 200 && firstStatus < 300) {
    fail(
      `the webhook answered ${firstStatus} although its events were not persisted: the sender will not retry and they are lost`,
    );
  }
  const secondStatus = await produce(ctx, instance);
  if (secondStatus !== undefined && (secondStatus < 200 || secondStatus >= 300)) {
    fail(
      `the retried webhook call answered ${secondStatus}; once the events are persisted it must answer 2xx`,
    );
  }
  const missing = failed.jtis.filter((jti) => !instance.sink.persisted.has(jti));
  if (missing.length > 0) {
    fail(
      `after the failed persist, ${missing.length} of ${failed.jtis.length} events were not produced again with the ` +
        'same jti: the records were not read again (did the checkpoint move past them?)',
    );
  }
  await stopWithin(ctx, instance, 'after the retry');
}

function shortType(type: string): string {
  return eventCatalog.find(type)?.shortName ?? type;
}

function uriOf(type: string): string {
  return eventCatalog.find(type)?.uri ?? type;
}

function recordsOf(events: readonly EventDraft[]): string {
  const ids = [...new Set(events.map((e) => e.sourceRecordId))];
  return ids.length > 3 ? `${ids.slice(0, 3).join(', ')} …` : ids.join(', ');
}

function fixtureNames(fixtures: Iterable<Fixture>): string {
  return [...new Set(fixtures)].map((f) => `${f.name}.json`).join(', ');
}

/**
 * What an instance emitted after the kit sent it `fixtures` (`how`: "a poll of every fixture"),
 * against what map() gives for them:
 * - every event handed to ctx.emit() is of a type manifest.emits lists;
 * - a stored event of a record map() gives events for is of a type map() gives for that record;
 * - every stored event is of a type map() gives for some fixture sent;
 * - every type map() gives for the fixtures sent is stored at least once.
 * A running instance may store fewer events than map() gives (a change it holds for later, a
 * downgrade of a level it never raised), under record ids of its own (a reconciliation), and
 * with more in them (a subject completed by a lookup); never events of other types.
 */
function storedProblems(
  ctx: SuiteContext,
  instance: KitInstance,
  fixtures: readonly Fixture[],
  how: string,
): string[] {
  /** Types map() gives, by record, and the fixtures each type comes from. */
  const byRecord = new Map<string, Set<string>>();
  const byType = new Map<string, Fixture[]>();
  for (const fixture of fixtures.filter(expectsEvents)) {
    const mapped = runMap(ctx, fixture.input);
    if (!mapped.ok) continue;
    for (const event of mapped.result.events) {
      const type = uriOf(event.type);
      byRecord.set(event.sourceRecordId, (byRecord.get(event.sourceRecordId) ?? new Set()).add(type));
      byType.set(type, [...(byType.get(type) ?? []), fixture]);
    }
  }
  const problems: string[] = [];
  const offList = new Map<string, EventDraft[]>();
  for (const event of instance.sink.attempts.flatMap((a) => a.events)) {
    if (listAllows(ctx.manifest.emits, event.type)) continue;
    offList.set(event.type, [...(offList.get(event.type) ?? []), event]);
  }
  for (const [type, events] of offList) {
    problems.push(
      `${how} emitted ${events.length} event(s) of type ${type} (records ${recordsOf(events)}), which ` +
        'manifest.emits does not list: receivers subscribed to what the manifest declares',
    );
  }
  const stored = [...instance.sink.persisted.values()].filter((e) => listAllows(ctx.manifest.emits, e.type));
  const otherType = new Map<string, EventDraft[]>();
  const unmapped = new Map<string, EventDraft[]>();
  for (const event of stored) {
    const type = uriOf(event.type);
    const forRecord = byRecord.get(event.sourceRecordId);
    if (forRecord && !forRecord.has(type)) otherType.set(type, [...(otherType.get(type) ?? []), event]);
    else if (!byType.has(type)) unmapped.set(type, [...(unmapped.get(type) ?? []), event]);
  }
  for (const [type, events] of otherType) {
    const given = [...(byRecord.get(events[0]!.sourceRecordId) ?? [])].map(shortType).join(', ');
    problems.push(
      `${how} stored ${shortType(type)} for record(s) ${recordsOf(events)}, for which map() gives ${given}: ` +
        'the running connector must emit what map() says its records become',
    );
  }
  for (const [type, events] of unmapped) {
    problems.push(
      `${how} stored ${events.length} event(s) of type ${shortType(type)} (records ${recordsOf(events)}), ` +
        'which map() gives for none of the fixtures: the running connector must emit what map() says its records become',
    );
  }
  const storedTypes = new Set(stored.map((e) => uriOf(e.type)));
  for (const [type, from] of byType) {
    if (storedTypes.has(type)) continue;
    problems.push(
      `map() gives ${shortType(type)} for ${fixtureNames(from)}, but ${how} stored none: the running ` +
        'connector drops or renames what its mapping produces',
    );
  }
  return problems;
}

/**
 * delivery.stored-as-mapped: what a running instance stores is what map() gives for the
 * fixtures it was sent: every fixture served to one poll, and every fixture posted to its
 * webhook (or sent to its listener), each to a fresh instance. The runs are those
 * metrics.counters and hygiene.secrets-not-logged read too.
 */
export async function storedAsMapped(ctx: SuiteContext): Promise<void> {
  mapper(ctx);
  const problems: string[] = [];
  const traffic = await driveTraffic(ctx);
  const how = polls(ctx)
    ? 'a poll of every fixture'
    : ctx.manifest.capabilities.webhook
      ? 'the webhook, posted every fixture,'
      : 'the listener, sent every fixture,';
  const found = storedProblems(ctx, traffic.instance, traffic.sent, how);
  if (traffic.poll && !traffic.poll.settled)
    found.unshift(`a poll of every fixture did not finish within ${POLL_BUDGET_MS} ms`);
  else if (found.length > 0 && traffic.poll?.error !== undefined) {
    const error = traffic.poll.error;
    found.push(`(the poll failed: ${error instanceof Error ? error.message : String(error)})`);
  }
  problems.push(...found);
  // A polling connector's webhook, when the kit can sign its requests.
  const webhook = polls(ctx) && ctx.options.webhook?.request ? await driveWebhook(ctx) : undefined;
  if (webhook && webhook.sent.length > 0) {
    problems.push(
      ...storedProblems(ctx, webhook.instance, webhook.sent, 'the webhook, posted every fixture,'),
    );
  }
  if (problems.length === 0) return;
  // Record ids are shown; a secret one would carry (hygiene.secrets-not-logged reports it) is not.
  let message = problems.join('\n');
  for (const { value } of ctx.secrets()) message = message.split(value).join('***');
  fail(message);
}

/**
 * A webhook body holding a malformed record is answered 4xx (its sender must not send it again)
 * and emits nothing: one request per `rejected` fixture.
 */
export async function refusesMalformed(ctx: SuiteContext): Promise<void> {
  const rejected = ctx.fixtures().fixtures.filter(expectsRejected);
  if (rejected.length === 0)
    fail(
      'add a fixture with malformed input ({"expect": {"rejected": "..."}}): it is sent as a webhook body',
    );
  ctx.resetServer();
  const instance = ctx.instance();
  await startWithin(instance);
  const problems: string[] = [];
  for (const fixture of rejected) {
    const before = instance.sink.attempts.length;
    const { status } = await ctx.webhook(instance, fixture.input);
    if (status < 400 || status >= 500) {
      const why =
        status >= 500
          ? 'the sender will retry a record that can never succeed; throw PermanentError for malformed input'
          : 'the sender believes the record was taken';
      problems.push(`${fixture.name}.json: the webhook answered ${status}, not 4xx: ${why}`);
    }
    if (instance.sink.attempts.length > before)
      problems.push(`${fixture.name}.json: events were emitted for a malformed record`);
  }
  if (typeof instance.inbound.handleWebhook === 'function')
    problems.push(...(await badBodies(ctx, instance)));
  await stopWithin(ctx, instance, 'after the malformed requests');
  if (problems.length > 0) fail(problems.join('\n'));
}

/** Bodies no sender's record is made of, each with the content type it is sent with. */
const BAD_BODIES: ReadonlyArray<{ what: string; raw: string; type: string }> = [
  { what: 'an empty body', raw: '', type: 'application/json' },
  { what: 'a text/plain body that is not JSON', raw: 'this is not JSON', type: 'text/plain' },
  { what: 'the JSON body null', raw: 'null', type: 'application/json' },
  { what: 'the JSON body []', raw: '[]', type: 'application/json' },
  { what: 'a JSON body that is a bare string', raw: '"kit"', type: 'application/json' },
];

/**
 * Requests whose bodies hold no record at all, with what options.webhook.request adds computed
 * over their bytes (a body it cannot sign is not sent): each is answered 4xx and emits nothing. A 5xx (a TypeError reading
 * `null.id`) has the sender retry a body that can never succeed; a 2xx tells it a record was taken.
 */
async function badBodies(ctx: SuiteContext, instance: KitInstance): Promise<string[]> {
  const problems: string[] = [];
  for (const { what, raw, type } of BAD_BODIES) {
    const before = instance.sink.attempts.length;
    const response = await ctx.webhookBytes(instance, Buffer.from(raw), type);
    // options.webhook.request cannot sign this body (it reads what no such body holds): not sent.
    if (response === undefined) continue;
    const { status } = response;
    if (status < 400 || status >= 500) {
      problems.push(
        `${what} (${type}) was answered ${status}, not 4xx: ` +
          (status >= 500
            ? 'the sender retries a body that can never succeed; check the shape of req.body and throw ' +
              'PermanentError (400) when it holds no record'
            : 'the sender believes a record was taken; answer 400'),
      );
    }
    if (instance.sink.attempts.length > before) problems.push(`${what} (${type}) emitted events`);
  }
  return problems;
}

/**
 * A webhook request without the credentials options.webhook.request adds, and one with them
 * changed, are refused with 401 or 403 and emit nothing.
 */
export async function webhookAuthenticated(ctx: SuiteContext): Promise<void> {
  const signed = ctx.options.webhook?.request !== undefined;
  // A connector that also polls is checked without the option too: a request bare of any
  // credentials is refused with 401 or 403. What a sender adds is needed to check wrong credentials.
  const bareOnly = !signed && polls(ctx);
  if (!signed && !bareOnly) {
    fail(
      'say what a legitimate sender adds to a webhook request (a token header, a signature) in ' +
        'options.webhook.request(body, rawBody), so the kit can check that a request without it is ' +
        'refused; a webhook that takes no credentials skips hygiene.webhook-auth in the manifest, with the reason',
    );
  }
  const fixture = ctx.fixtures().fixtures.find(expectsEvents);
  if (!fixture) fail('add a fixture that maps to events: it is sent as the webhook body');
  const instance = await startProducer(ctx);
  const problems: string[] = [];
  const variants = signed
    ? ([
        ['none', 'without the credentials options.webhook.request adds'],
        ['wrong', 'with the credentials options.webhook.request adds, their values changed,'],
      ] as const)
    : ([['none', 'without any credentials']] as const);
  for (const [credentials, what] of variants) {
    // What start() committed (a checkpoint alone, say) is not the request's doing.
    const before = instance.sink.attempts.length;
    const { status } = await ctx.webhook(instance, fixture.input, { credentials });
    if (status === 404) {
      // A 404 says the instance takes no webhooks: nothing about their authentication was checked.
      problems.push(
        `a webhook request ${what} was answered 404: the instance takes no webhooks with ` +
          'options.validConfig, so their authentication goes unchecked; give a validConfig that takes webhooks' +
          (bareOnly ? ' and options.webhook.request' : '') +
          ', or skip hygiene.webhook-auth in the manifest with the reason',
      );
    } else if (status !== 401 && status !== 403) {
      problems.push(
        `a webhook request ${what} was answered ${status}; ` +
          'refuse it with 401 (no or wrong credentials) or 403, before reading the body' +
          (bareOnly
            ? ' (give options.webhook.request so the kit also checks wrong credentials and malformed bodies)'
            : ''),
      );
    }
    if (instance.sink.attempts.length > before) problems.push(`a webhook request ${what} emitted events`);
  }
  if (signed && typeof instance.inbound.handleWebhook === 'function') {
    problems.push(...(await rawBytesSigned(ctx, instance, fixture)));
  }
  await stopWithin(ctx, instance, 'after the unauthenticated requests');
  if (problems.length > 0) fail(problems.join('\n'));
}

function answerClass(status: number): string {
  return status === 401 || status === 403 ? 'refused' : `${Math.floor(status / 100)}xx`;
}

/**
 * The same request twice, signed as options.webhook.request signs it: first with its JSON body
 * indented, as many senders post it, then compact. A signature checked over
 * JSON.stringify(req.body) matches the compact one only; over req.rawBody, both.
 */
async function rawBytesSigned(ctx: SuiteContext, instance: KitInstance, fixture: Fixture): Promise<string[]> {
  const posted = ctx.webhookBody(fixture.input);
  if (JSON.stringify(posted, null, 2) === JSON.stringify(posted)) return [];
  const pretty = (await ctx.webhook(instance, fixture.input, { pretty: true })).status;
  const compact = (await ctx.webhook(instance, fixture.input)).status;
  if (answerClass(pretty) === answerClass(compact)) return [];
  const at = `a webhook request with ${fixture.name}.json, signed as options.webhook.request signs it`;
  return [
    answerClass(pretty) === 'refused'
      ? `${at} over its JSON body indented (rawBody is not JSON.stringify(body)), was answered ${pretty}, and ` +
        `${compact} compact: check the signature over req.rawBody, the bytes received, never over JSON.stringify(req.body)`
      : `${at} over its JSON body indented, was answered ${pretty}, and ${compact} compact: read the body as received`,
  ];
}

function is2xx(status: number): boolean {
  return status >= 200 && status < 300;
}

/** What a sender retries: 429 and 5xx (the bridge answers 503 with Retry-After to a RetryableError). */
function isRetryableAnswer(status: number): boolean {
  return status === 429 || (status >= 500 && status < 600);
}

/** Resolves once `condition` holds, or with false after `ms`. */
async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!condition()) {
    if (performance.now() >= end) return false;
    await delay(5);
  }
  return true;
}

interface WebhookCall {
  response?: InboundResponse;
  error?: unknown;
  settled: boolean;
  done: Promise<void>;
}

/** Sends a webhook request without waiting for its answer, so the kit can watch what happens first. */
function sendWebhook(ctx: SuiteContext, instance: KitInstance, body: unknown): WebhookCall {
  const call: WebhookCall = { settled: false, done: Promise.resolve() };
  call.done = ctx.webhook(instance, body).then(
    (response) => {
      call.response = response;
      call.settled = true;
    },
    (error: unknown) => {
      call.error = error;
      call.settled = true;
    },
  );
  return call;
}

/** The status a settled call answered with (a kit failure the call raised is raised again). */
async function answered(call: WebhookCall, what: string): Promise<number> {
  if (!call.settled) await within(call.done, WEBHOOK_BUDGET_MS);
  if (!call.settled) fail(`${what} was not answered within ${WEBHOOK_BUDGET_MS} ms`);
  if (call.error !== undefined) throw call.error;
  return (call.response as InboundResponse).status;
}

/**
 * The first fixture that maps to events whose webhook request, sent to a fresh instance, persists
 * events. A fixture may map to events alone yet emit nothing there (a downgrade of a level this
 * instance never raised).
 */
async function emittingWebhookFixture(ctx: SuiteContext): Promise<Fixture> {
  const candidates = ctx.fixtures().fixtures.filter(expectsEvents);
  if (candidates.length === 0) fail('add a fixture that maps to events: it is sent as the webhook body');
  const answers: string[] = [];
  for (const fixture of candidates) {
    const instance = await startProducer(ctx);
    const status = await answered(
      sendWebhook(ctx, instance, fixture.input),
      `a webhook request with ${fixture.name}.json`,
    );
    await until(() => instance.sink.persisted.size > 0, EARLY_ANSWER_WAIT_MS);
    const refused = instance.sink.attempts.find((a) => a.outcome === 'invalid');
    await stopWithin(ctx, instance, 'after a webhook request');
    if (refused?.refusal)
      fail(
        `ctx.emit() refused the events of ${fixture.name}.json, a fixture that maps to events: ${refused.refusal}`,
      );
    if (instance.sink.persisted.size > 0) return fixture;
    answers.push(`${fixture.name}.json: ${status}`);
  }
  return fail(
    `no webhook request with a fixture that maps to events persisted any (answers: ${answers.join(', ')}): ` +
      'does options.webhook.request add what the sender adds, options.webhook.body make the body it posts, ' +
      'and options.validConfig take webhooks?',
  );
}

/**
 * A webhook answers 2xx only once ctx.emit() has made its events durable, and a retryable
 * answer (503, any 5xx, 429) when ctx.emit() fails, so its sender tries again; the retry is
 * answered 2xx and persists the same jtis. Run for every connector that takes webhooks, those
 * that also poll included: their poll passing delivery.at-least-once says nothing of the webhook.
 */
export async function webhookAckAfterPersist(ctx: SuiteContext): Promise<void> {
  if (polls(ctx) && ctx.options.webhook?.request === undefined) {
    fail(
      'this connector also takes webhooks: give options.webhook.request(body, rawBody) (what its sender ' +
        'adds: a token header, a signature) and a validConfig that takes webhooks, so the kit can check ' +
        'that the webhook answers only after its events are persisted; or skip ' +
        'delivery.webhook-ack-after-persist in the manifest with the reason (a stable connector skips no delivery case)',
    );
  }
  const fixture = await emittingWebhookFixture(ctx);
  const at = `a webhook request with ${fixture.name}.json`;
  const problems: string[] = [];

  // A failed persist (the outbox full): the sender is told to try again, and the retry is taken.
  const instance = await startProducer(ctx);
  instance.sink.failNextPersist();
  const before = instance.sink.attempts.length;
  const first = await answered(sendWebhook(ctx, instance, fixture.input), at);
  // A webhook that answers first may still emit a moment later.
  await until(
    () => instance.sink.attempts.slice(before).some((a) => a.outcome !== 'pending'),
    EARLY_ANSWER_WAIT_MS,
  );
  const attempts = instance.sink.attempts.slice(before);
  const refused = attempts.find((a) => a.outcome === 'invalid');
  if (refused?.refusal)
    fail(`ctx.emit() refused the events of a fixture that maps to events: ${refused.refusal}`);
  const failed = attempts.find((a) => a.outcome === 'failed');
  if (!failed) {
    fail(
      is2xx(first)
        ? `${at} was answered ${first} and emitted nothing: emit its events with ctx.emit() before answering`
        : `${at} was answered ${first} and emitted nothing, although the fixture maps to events: ` +
            'does options.webhook.request add what the sender adds, and does options.validConfig take webhooks?',
    );
  }
  if (!isRetryableAnswer(first)) {
    problems.push(
      `${at} was answered ${first} although ctx.emit() failed (a RetryableError: the outbox could not ` +
        `persist them): ${is2xx(first) ? 'the sender believes the events were taken' : 'the sender does not retry a 4xx'} ` +
        'and they are lost; let the error of ctx.emit() propagate (the bridge answers 503 with Retry-After)',
    );
  }
  const retry = await answered(sendWebhook(ctx, instance, fixture.input), `the retried ${at}`);
  if (!is2xx(retry)) {
    problems.push(`the retried ${at} was answered ${retry}; once its events are persisted, answer 2xx`);
  }
  await until(() => failed.jtis.every((jti) => instance.sink.persisted.has(jti)), EARLY_ANSWER_WAIT_MS);
  const missing = failed.jtis.filter((jti) => !instance.sink.persisted.has(jti));
  if (missing.length > 0) {
    problems.push(
      `after the failed persist, the retried ${at} did not persist ${missing.length} of the ` +
        `${failed.jtis.length} events with the same jti`,
    );
  }
  await stopWithin(ctx, instance, 'after the retried webhook request');

  // A slow persist: no answer until ctx.emit() has resolved.
  const slow = await startProducer(ctx);
  const release = slow.sink.hold();
  const heldFrom = slow.sink.attempts.length;
  const call = sendWebhook(ctx, slow, fixture.input);
  try {
    const reached = await until(
      () => call.settled || slow.sink.attempts.length > heldFrom,
      WEBHOOK_BUDGET_MS,
    );
    if (!reached) fail(`${at} neither called ctx.emit() nor was answered within ${WEBHOOK_BUDGET_MS} ms`);
    // Emitting: a webhook that does not wait for ctx.emit() answers while the persist is held.
    if (!call.settled) await until(() => call.settled, EARLY_ANSWER_WAIT_MS);
    if (call.settled && call.error === undefined) {
      const status = (call.response as InboundResponse).status;
      problems.push(
        `${at} was answered ${status} before ctx.emit() had persisted its events (the kit held the persist): ` +
          'were the bridge to stop or the persist to fail then, the events would be lost' +
          (is2xx(status) ? ', the sender told they were taken' : '') +
          '; await ctx.emit(events), then answer',
      );
    }
  } finally {
    release();
  }
  const late = await answered(call, `${at}, once its persist was released,`);
  if (!is2xx(late) && problems.length === 0) {
    problems.push(`${at} was answered ${late} once ctx.emit() had persisted its events; answer 2xx`);
  }
  await stopWithin(ctx, slow, 'after the slow persist');
  if (problems.length > 0) fail(problems.join('\n'));
}

export async function checkpointAfterPersist(ctx: SuiteContext): Promise<void> {
  const instance = await startProducer(ctx);
  const before = instance.checkpoints.snapshot();
  instance.sink.failNextPersist();
  await produce(ctx, instance);
  const problems: string[] = [];
  if (instance.checkpoints.snapshot() !== before) {
    problems.push('the checkpoint moved although persisting the events failed');
  }
  // The retry reads everything again: the saves it makes are those of a clean poll.
  const savesBefore = instance.sink.saves;
  await produce(ctx, instance);
  const clean = { saves: instance.sink.saves - savesBefore, stored: new Map(instance.sink.persisted) };
  for (let run = 1; run <= instance.run; run += 1) {
    const ops = instance.journal.filter((e) => e.run === run).map((e) => e.op);
    const firstSet = ops.indexOf('direct-set');
    if (firstSet >= 0 && ops.slice(firstSet).some((op) => op === 'emit' || op === 'emit-failed')) {
      problems.push('ctx.checkpoints.set() ran before ctx.emit() had made the events durable');
    }
    const failedAt = ops.indexOf('emit-failed');
    if (failedAt >= 0 && ops.slice(failedAt).includes('direct-set')) {
      problems.push('ctx.checkpoints.set() ran after ctx.emit() had failed');
    }
  }
  const stateSchema = (ctx.definition as InboundDefinition).stateSchema;
  for (const [key, value] of instance.checkpoints.values) {
    if (stateSchema && !stateSchema.safeParse(value).success)
      problems.push(`checkpoint ${key} does not match stateSchema`);
  }
  await stopWithin(ctx, instance, 'after the checkpoint check');
  if (problems.length === 0 && polls(ctx)) problems.push(...(await laterSavesFailed(ctx, clean)));
  if (problems.length > 0) {
    fail(
      `${[...new Set(problems)].join('\n')}\npass the checkpoint with the events: ctx.emit(events, { checkpoint })`,
    );
  }
}

/** At most this many later saves of a poll are failed, one poll each. */
const MAX_FAILED_SAVES = 5;

/**
 * Which saves to fail among the `saves` of a clean poll (the first is failed above): every one,
 * or the second, the third, the middle one and the last two.
 */
function savesToFail(saves: number): number[] {
  if (saves - 1 <= MAX_FAILED_SAVES) return Array.from({ length: Math.max(0, saves - 1) }, (_, i) => i + 2);
  return [...new Set([2, 3, Math.ceil(saves / 2), saves - 1, saves])];
}

/**
 * A poll whose k-th save fails, for the later saves a clean poll makes, then polls again:
 * everything the clean poll stored is stored by then. A poll that commits a cursor ahead of the
 * events it comes with (the last page's cursor with the first page's events) loses the events
 * between them when a later save fails; failing only the first save never shows it.
 */
async function laterSavesFailed(
  ctx: SuiteContext,
  clean: { saves: number; stored: Map<string, EventDraft> },
): Promise<string[]> {
  const expected = [...clean.stored.keys()];
  if (expected.length === 0) return [];
  for (const k of savesToFail(clean.saves)) {
    const instance = await startProducer(ctx);
    instance.sink.failSave(k);
    await pollOnce(ctx, instance);
    // The poll after the failure, and one more for a connector that backs off once.
    for (let retry = 0; retry < 2; retry += 1) {
      if (expected.every((jti) => instance.sink.persisted.has(jti))) break;
      await pollOnce(ctx, instance);
    }
    const missing = expected.filter((jti) => !instance.sink.persisted.has(jti));
    await stopWithin(ctx, instance, `after failing save ${k}`);
    if (missing.length > 0) {
      const lost = missing.map((jti) => clean.stored.get(jti)!);
      return [
        `with save ${k} of the ${clean.saves} a clean poll makes failed, the polls after it never stored ` +
          `${missing.length} of the ${expected.length} events a clean poll stores (records ${recordsOf(lost)}): ` +
          'a checkpoint saved earlier ran ahead of the events it came with; commit each cursor with the events read up to it',
      ];
    }
  }
  return [];
}

/**
 * A poll that meets malformed records (each `rejected` fixture, served before the good ones)
 * logs and skips them: it settles without error, persists the good records' events and moves
 * its checkpoint past the bad ones, so one bad record cannot stop the intake for good.
 */
export async function skipsMalformed(ctx: SuiteContext): Promise<void> {
  const rejected = ctx.fixtures().fixtures.filter(expectsRejected);
  if (rejected.length === 0)
    fail('add a fixture with malformed input ({"expect": {"rejected": "..."}}): it is served to a poll');
  // What one poll of the good records alone persists, to compare with.
  const control = await startProducer(ctx);
  await pollOnce(ctx, control);
  const expected = [...control.sink.persisted.keys()];
  await stopWithin(ctx, control, 'after the poll of the good records');

  ctx.resetServer();
  pollOptions(ctx).serve(ctx.server, [...rejected.map((f) => f.input), ...servedRecords(ctx)]);
  const instance = ctx.instance();
  await startWithin(instance);
  const before = instance.checkpoints.snapshot();
  const run = await instance.runTask(POLL_BUDGET_MS, ctx.options.poll?.task);
  const bad = rejected.map((f) => `${f.name}.json`).join(', ');
  if (!run.settled)
    fail(`a poll that met malformed records (${bad}) did not finish within ${POLL_BUDGET_MS} ms`);
  if (!run.ok) {
    const message = run.error instanceof Error ? run.error.message : String(run.error);
    fail(
      `a poll failed on malformed records (${bad}): ${message}\n` +
        'log and skip a record map() refuses, and go on with the next: a poll that throws never moves ' +
        'its checkpoint, so every later record is lost',
    );
  }
  const problems: string[] = [];
  const missing = expected.filter((jti) => !instance.sink.persisted.has(jti));
  if (missing.length > 0) {
    problems.push(
      `${missing.length} of the ${expected.length} events a poll of the good records persists were lost ` +
        'when malformed records were served before them',
    );
  }
  if (instance.checkpoints.snapshot() === before)
    problems.push('the checkpoint did not move: the next poll reads the malformed records again');
  const attemptsBefore = instance.sink.attempts.length;
  const again = await instance.runTask(POLL_BUDGET_MS, ctx.options.poll?.task);
  if (!again.settled || !again.ok) problems.push('the poll after it failed or did not finish');
  const repeated = instance.sink.attempts.slice(attemptsBefore).flatMap((a) => a.events);
  if (repeated.length > 0)
    problems.push(
      `the poll after it emitted ${repeated.length} event(s) again: the checkpoint stayed behind`,
    );
  await stopWithin(ctx, instance, 'after the malformed records');
  if (problems.length > 0) fail(problems.join('\n'));
}

export async function emptyPoll(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  pollOptions(ctx).serve(ctx.server, []);
  const empty = ctx.instance();
  await startWithin(empty);
  const run = await empty.runTask(POLL_BUDGET_MS, ctx.options.poll?.task);
  if (!run.settled) fail(`a poll of an empty source did not finish within ${POLL_BUDGET_MS} ms`);
  if (!run.ok)
    fail(`a poll of an empty source failed: ${(run.error as Error)?.message ?? String(run.error)}`);
  if (empty.sink.persisted.size > 0) fail('a poll of an empty source emitted events');
  await stopWithin(ctx, empty, 'after the empty poll');

  const instance = await startProducer(ctx);
  await pollOnce(ctx, instance);
  const attemptsBefore = instance.sink.attempts.length;
  await pollOnce(ctx, instance);
  const repeated = instance.sink.attempts.slice(attemptsBefore).flatMap((a) => a.events);
  if (repeated.length > 0) {
    fail(
      `after every record was persisted, the next poll emitted ${repeated.length} event(s) again: commit the checkpoint with the events`,
    );
  }
  await stopWithin(ctx, instance, 'after the second poll');
}

export async function pollRequestTimeout(ctx: SuiteContext): Promise<void> {
  const plan = timeoutPlan(ctx);
  ctx.resetServer();
  pollOptions(ctx).serve(ctx.server, servedRecords(ctx));
  const instance = ctx.instance({ config: plan.config });
  await startWithin(instance);
  const problems: string[] = [];
  // A poll that gets answers first, and check(): the deadlines of every request they make are recorded.
  await instance.runTask(POLL_BUDGET_MS, ctx.options.poll?.task);
  const check = instance.connector.check;
  if (typeof check === 'function') await within(check.call(instance.connector, instance.abort.signal), 3_000);
  ctx.server.override('hang');
  const run = await instance.runTask(KIT_REQUEST_TIMEOUT_MS + 1_500, ctx.options.poll?.task);
  ctx.server.override(undefined);
  if (!run.settled) {
    fail(
      'a poll against an API that never answers did not end: make every request through ctx.http, whose clients always have a deadline',
    );
  }
  if (ctx.server.requests.length === 0)
    fail('the poll sent no request to the mock API; options.validConfig must point the connector at it');
  const unmarked = ctx.unmarkedRequests(KIT_MARKER_HEADER);
  if (unmarked.length > 0) {
    fail(
      `${unmarked.length} request(s) did not go through ctx.http (e.g. ${unmarked[0]?.method} ${unmarked[0]?.path}) and have no enforced deadline`,
    );
  }
  problems.push(...requestedTimeoutProblems(instance, plan));
  await stopWithin(ctx, instance, 'after the hanging poll');
  if (problems.length > 0) fail(problems.join('\n'));
}
