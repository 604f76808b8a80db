import type { EventDraft } from '../types.ts';
import type { KitInstance } from './harness.ts';
import type { MockServer } from './mock-server.ts';

/** What a sender adds to a webhook request (authentication headers, a signature, a query). */
export interface WebhookRequestParts {
  headers?: Record<string, string>;
  query?: Record<string, string>;
}

/** A documented error answer of an outbound target and the class it must produce. */
export interface ErrorResponseCase {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  expect: 'retryable' | 'permanent' | 'credentials';
}

/** What the kit sent through the connector while checking its counters. */
export interface Traffic {
  /** Inbound: webhook requests sent, or records served to a poll (every fixture, malformed ones included). */
  records: number;
  /** Inbound: webhook requests answered 2xx. */
  accepted: number;
  /**
   * Inbound: webhook requests answered 4xx (malformed fixtures), or malformed records (`rejected`
   * fixtures) served to a poll, which it skips.
   */
  rejected: number;
  /** Inbound: records the fixtures expect to be ignored. */
  ignored: number;
  /** Inbound: events persisted. */
  events: number;
  /** Outbound: SETs delivered. */
  delivered: number;
  /** Outbound: deliveries that failed (the target answered 500). */
  failed: number;
}

/** The value one counter (optionally one labelled series of it) must have after the traffic. */
export interface MetricExpectation {
  /** Counter name as the connector registers it, e.g. `alerts_read_total`. */
  name: string;
  labels?: Record<string, string>;
  value: (traffic: Traffic) => number;
}

export interface ConformanceOptions {
  /**
   * The connector's folder (`new URL('.', import.meta.url)`): its name, or its package's name,
   * must equal the connector id. Fixtures and README.md are read from it.
   */
  connectorDir: string | URL;
  /** Defaults to `<connectorDir>/fixtures`. */
  fixturesDir?: string | URL;
  /** A valid config as an operator writes it; a function receives the mock server (for URLs). */
  validConfig: unknown;
  /** Configs that must be refused, each with a substring of the expected error. */
  invalidConfigs?: Array<{ config: unknown; error: string }>;
  /** Fields whose names look like credentials but hold none, each with the reason. */
  notSecret?: Record<string, string>;
  /** Routes every case's mock server starts with (e.g. an OAuth token endpoint). */
  mock?: (server: MockServer) => void;
  /** Webhook connectors: what a legitimate sender adds to each request. */
  webhook?: {
    request?: (body: unknown, rawBody: Buffer) => WebhookRequestParts;
    /**
     * The JSON body a sender posts for one fixture input, when the fixtures hold records in
     * another form than the webhook's body (a record the sender wraps in a batch, a webhook
     * payload kept beside what a poll serves). Defaults to the input itself.
     */
    body?: (input: unknown) => unknown;
  };
  /** Polling connectors: serves `records` (fixture inputs) the way the vendor API does. */
  poll?: { serve: (server: MockServer, records: unknown[]) => void; task?: string };
  /**
   * Listening connectors (`capabilities.stream`): sends one fixture input to the running
   * instance the way a sender does, and resolves once the instance has handled it, with the
   * status a webhook would answer: 2xx handled (or ignored), 4xx refused, 503 when the pipeline
   * did not persist its events.
   */
  stream?: { send: (input: unknown, instance: KitInstance) => Promise<number> };
  outbound?: {
    /** False for destinations that never touch the network (e.g. standard output). */
    network?: boolean;
    /** An event the connector accepts, when the kit cannot build one without claims. */
    event?: EventDraft;
    /**
     * One event per accepted type the kit's own sample does not fit (claims it cannot guess, a
     * subject the target needs). `delivery.deliver` sends one SET of every accepted type: this
     * event for its type, else `event` for its type, else a sample of the type with the subject
     * of `event` (or an email subject) and the claims the type requires.
     */
    events?: EventDraft[];
    /** The target's documented error answers; defaults cover 5xx, 429, 4xx and 401/403. */
    errorResponses?: ErrorResponseCase[];
  };
  /** What each counter the connector registers counts. Every counter needs one. */
  metrics?: MetricExpectation[];
  /** The deadline handed to stop() in lifecycle cases; defaults to 500 ms. */
  stopDeadlineMs?: number;
}

export const DEFAULT_ERROR_RESPONSES: readonly ErrorResponseCase[] = [
  { status: 500, expect: 'retryable' },
  { status: 503, headers: { 'retry-after': '7' }, expect: 'retryable' },
  { status: 429, headers: { 'retry-after': '3' }, expect: 'retryable' },
  { status: 400, body: { error: 'invalid_request' }, expect: 'permanent' },
  { status: 404, expect: 'permanent' },
  { status: 422, expect: 'permanent' },
  { status: 401, expect: 'credentials' },
  { status: 403, expect: 'credentials' },
];
