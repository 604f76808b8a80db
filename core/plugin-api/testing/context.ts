import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { isSecret } from '../secret.ts';
import type {
  ConnectorDefinition,
  EventDraft,
  InboundRequest,
  InboundResponse,
  SignedSet,
} from '../types.ts';
import { classOf } from '../errors.ts';
import { loadFixtures, type FixtureSet } from './fixtures.ts';
import { Capture, KitInstance, type InstanceOptions } from './harness.ts';
import { mintSet, sampleDraft } from './events.ts';
import { MockServer, type RecordedRequest } from './mock-server.ts';
import type { ConformanceOptions, WebhookRequestParts } from './options.ts';

/** A case failed; the message says what to change. */
export class ConformanceFailure extends Error {
  override readonly name = 'ConformanceFailure';
}

export function fail(message: string): never {
  throw new ConformanceFailure(message);
}

export function toPath(location: string | URL): string {
  return location instanceof URL || location.startsWith('file:') ? fileURLToPath(location) : location;
}

/** The content types the HTTP server parses as JSON (as core/http/server.ts does). */
const JSON_TYPE = /^application\/([\w.+-]*\+)?json\b/i;

const INBOUND_FALLBACK = { status: 404, body: { error: 'no route in the mock API' } };
const OUTBOUND_FALLBACK = { status: 202 };

/**
 * One character of a credential changed to another of the same kind (a digit, a letter of the
 * same case, kept within a-f for hex), near the middle: still well-formed, never the right value.
 */
function altered(value: string): string {
  const chars = [...value];
  const start = Math.floor(chars.length / 2);
  for (let n = 0; n < chars.length; n += 1) {
    const i = (start + n) % chars.length;
    const c = chars[i]!;
    const base = /[0-9]/.test(c) ? 48 : /[a-z]/.test(c) ? 97 : /[A-Z]/.test(c) ? 65 : undefined;
    if (base === undefined) continue;
    // Pairs: 0↔1, 2↔3 …, a↔b, c↔d …, so hex stays hex and base64 stays base64.
    chars[i] = String.fromCharCode(base + ((c.charCodeAt(0) - base) ^ 1));
    return chars.join('');
  }
  return `${value}x`;
}

/** What a sender with the wrong credentials sends: every header (but content-type) and query value changed. */
function wrongCredentials(parts: WebhookRequestParts): WebhookRequestParts {
  const change = (values: Record<string, string> | undefined, keep: (name: string) => boolean) =>
    Object.fromEntries(Object.entries(values ?? {}).map(([k, v]) => [k, keep(k) ? v : altered(v)]));
  return {
    headers: change(parts.headers, (name) => name.toLowerCase() === 'content-type'),
    query: change(parts.query, () => false),
  };
}

/** What every case of one connector's suite shares: the mock server, captured output, config. */
export class SuiteContext {
  readonly server = new MockServer();
  readonly capture = new Capture();
  /** Every request the mock server received in earlier cases of this suite. */
  readonly pastRequests: RecordedRequest[] = [];
  readonly connectorDir: string;
  readonly #instances: KitInstance[] = [];
  #fixtures: FixtureSet | undefined;

  constructor(
    readonly definition: ConnectorDefinition,
    readonly options: ConformanceOptions,
  ) {
    this.connectorDir = toPath(options.connectorDir);
  }

  get manifest() {
    return this.definition.manifest;
  }

  get networked(): boolean {
    return this.definition.kind === 'inbound' || this.options.outbound?.network !== false;
  }

  get stopDeadlineMs(): number {
    return this.options.stopDeadlineMs ?? 500;
  }

  fixtures(): FixtureSet {
    const dir = this.options.fixturesDir
      ? toPath(this.options.fixturesDir)
      : join(this.connectorDir, 'fixtures');
    this.#fixtures ??= loadFixtures(dir);
    return this.#fixtures;
  }

  readme(): string | undefined {
    const file = join(this.connectorDir, 'README.md');
    return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  }

  /** The valid config as written (input form). */
  rawConfig(): unknown {
    const given = this.options.validConfig;
    return typeof given === 'function' ? (given as (s: MockServer) => unknown)(this.server) : given;
  }

  /** The valid config after validation, as create() receives it. */
  parsedConfig(): unknown {
    const result = this.definition.configSchema.safeParse(this.rawConfig());
    if (!result.success) fail(`options.validConfig is not valid:\n${z.prettifyError(result.error)}`);
    return result.data;
  }

  /** Raw values of every secret in the valid config, with the field they came from. */
  secrets(): Array<{ field: string; value: string }> {
    const found: Array<{ field: string; value: string }> = [];
    const walk = (value: unknown, path: string): void => {
      if (isSecret(value)) found.push({ field: path, value: value.reveal() });
      else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${path}[${i}]`));
      else if (value && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
      }
    };
    walk(this.parsedConfig(), '');
    return found.filter((s) => s.value.length >= 4);
  }

  /** Gives each case a clean mock server with the author's routes. */
  resetServer(): void {
    this.pastRequests.push(...this.server.requests);
    this.server.reset(this.definition.kind === 'outbound' ? OUTBOUND_FALLBACK : INBOUND_FALLBACK);
    this.options.mock?.(this.server);
  }

  /** A fresh instance, with the valid config unless `options.config` (validated) is given. */
  instance(options: Partial<InstanceOptions> = {}): KitInstance {
    const instance = new KitInstance(this.definition, this.capture, {
      config: this.parsedConfig(),
      ...options,
    });
    this.#instances.push(instance);
    return instance;
  }

  /** Stops whatever a case left running, so cases never leak into each other. */
  async settleInstances(): Promise<void> {
    this.server.override(undefined);
    for (const instance of this.#instances.splice(0)) {
      if (!instance.abort.signal.aborted) await instance.stop(200).catch(() => undefined);
    }
  }

  /** A SET the connector accepts, signed for its target (of `draft`, when given). */
  async set(instance: KitInstance, recordId = 'kit-record-1', given?: EventDraft): Promise<SignedSet> {
    const draft: EventDraft | undefined =
      given ?? this.options.outbound?.event ?? sampleDraft(this.manifest.accepts);
    if (!draft) {
      fail(
        `the kit cannot build an event of the accepted types (${(this.manifest.accepts ?? []).join(', ')}) ` +
          'without claims; give one in options.outbound.event',
      );
    }
    const connector = instance.outbound;
    // The delivery engine lets a connector adjust the event before its SET is built.
    const prepared = connector.prepare ? await connector.prepare(draft, instance.abort.signal) : draft;
    const target = connector.target;
    return mintSet(prepared, recordId, {
      id: 'kit-destination',
      audience: target.audience,
      ...(target.profile ? { profile: target.profile } : {}),
    });
  }

  /** The body a sender posts for one fixture input (as options.webhook.body makes it). */
  webhookBody(input: unknown): unknown {
    const toBody = this.options.webhook?.body;
    return toBody ? toBody(structuredClone(input)) : input;
  }

  /**
   * Sends a webhook request for one fixture input (as options.webhook.body makes it) as the HTTP
   * server would, mapping a throw to the status it sends. `pretty` sends the JSON indented, as
   * many senders do: `rawBody` is then not what JSON.stringify(body) gives, and a signature must
   * be computed over `rawBody` to match.
   */
  async webhook(
    instance: KitInstance,
    input: unknown,
    options: { credentials?: 'none' | 'wrong'; pretty?: boolean } = {},
  ): Promise<InboundResponse> {
    const handle = instance.inbound.handleWebhook;
    const stream = this.manifest.capabilities.stream ? this.options.stream : undefined;
    if (typeof handle !== 'function' && stream) {
      instance.nextRun();
      return { status: await stream.send(input, instance) };
    }
    if (typeof handle !== 'function')
      fail('the instance has no handleWebhook(); declare capabilities.poll instead');
    const posted = this.webhookBody(input);
    const json = options.pretty ? JSON.stringify(posted, null, 2) : JSON.stringify(posted);
    const rawBody = Buffer.from(json ?? '');
    const given = this.options.webhook?.request?.(posted, rawBody) ?? {};
    const parts =
      options.credentials === 'none' ? {} : options.credentials === 'wrong' ? wrongCredentials(given) : given;
    return this.#post(instance, rawBody, posted, 'application/json', parts);
  }

  /**
   * Sends exactly `rawBody` with `contentType`, as the HTTP server hands a request over: `body`
   * is the JSON it parses when the content type is JSON (a body that does not parse is answered
   * 400 by the server, before any connector sees it), else undefined. What
   * options.webhook.request adds is computed over these bytes; undefined when it cannot be (it
   * throws for a body no sender of its would post).
   */
  async webhookBytes(
    instance: KitInstance,
    rawBody: Buffer,
    contentType: string,
  ): Promise<InboundResponse | undefined> {
    if (typeof instance.inbound.handleWebhook !== 'function') fail('the instance has no handleWebhook()');
    let body: unknown;
    if (rawBody.length > 0 && JSON_TYPE.test(contentType)) {
      try {
        body = JSON.parse(rawBody.toString('utf8')) as unknown;
      } catch (err) {
        return { status: 400, body: { message: `malformed JSON body: ${(err as Error).message}` } };
      }
    }
    let given: WebhookRequestParts;
    try {
      given = this.options.webhook?.request?.(body, rawBody) ?? {};
    } catch {
      return undefined;
    }
    return this.#post(instance, rawBody, body, contentType, given);
  }

  async #post(
    instance: KitInstance,
    rawBody: Buffer,
    body: unknown,
    contentType: string,
    parts: WebhookRequestParts,
  ): Promise<InboundResponse> {
    const handle = instance.inbound.handleWebhook as NonNullable<typeof instance.inbound.handleWebhook>;
    instance.nextRun();
    const headers: Record<string, string> = { 'content-type': contentType };
    for (const [name, value] of Object.entries(parts.headers ?? {})) headers[name.toLowerCase()] = value;
    const req: InboundRequest = {
      method: 'POST',
      headers,
      query: parts.query ?? {},
      rawBody,
      body,
      remoteAddress: '127.0.0.1',
    };
    try {
      const response = await handle.call(instance.inbound, req);
      // What a sender reads back, headers included, is scanned for secrets like a log line.
      this.capture.note(JSON.stringify(response.body ?? ''));
      if (response.headers) this.capture.note(JSON.stringify(response.headers));
      return response;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.capture.note(message);
      const cls = classOf(err);
      return { status: cls === 'retryable' ? 503 : cls === 'permanent' ? 400 : 500, body: { message } };
    }
  }

  /** Requests that did not come through ctx.http, in this suite so far. */
  unmarkedRequests(marker: string): RecordedRequest[] {
    return [...this.pastRequests, ...this.server.requests].filter((r) => r.headers[marker] === undefined);
  }
}
