/**
 * The connector conformance kit: the public testing entry of the plugin API
 * (`ssf-bridge/plugin-api/testing`). A connector's test file calls runConnectorConformance() once;
 * third-party packages use the same kit as first-party connectors.
 */
export { runConnectorConformance } from './run.ts';
export { checkConnectorConformance, conformanceSuite } from './suite.ts';
export type { CaseResult, ConformanceCase, ConformanceSuite } from './suite.ts';
export { CASES, MIN_SKIP_REASON } from './cases.ts';
export type { CaseGroup, CaseInfo } from './cases.ts';
export { MockServer } from './mock-server.ts';
export { testHttpClientFactory, type TestHttpOptions } from './http.ts';
export { staticDeviceDirectory, type GivenDevice } from '../../devices/owners.ts';
export { memoryReceivedIds } from './received-ids.ts';
export type { MockHandler, MockResponse, RecordedRequest } from './mock-server.ts';
export { DEFAULT_ERROR_RESPONSES } from './options.ts';
export type {
  ConformanceOptions,
  ErrorResponseCase,
  MetricExpectation,
  Traffic,
  WebhookRequestParts,
} from './options.ts';
export type { KitInstance } from './harness.ts';
export { loadFixtures } from './fixtures.ts';
export type { Fixture, FixtureExpectation, FixtureSet } from './fixtures.ts';
export { GENERATED_END, GENERATED_START, renderReference, withGeneratedSection } from './docs.ts';
export { runAuthoringTool } from './tools.ts';
export type { ToolIo } from './tools.ts';
/** The values the bridge scrubs from logs now: a test checks its credentials are there while they live. */
export { EXPIRED_SECRET_MARGIN_MS, registeredSecretValues } from '../secret.ts';
export { assertCheckpointExpected } from './checkpoints.ts';
export { checkDraft, type DraftCheck } from './events.ts';
