import { afterAll, beforeAll, describe, it } from 'vitest';
import type { ConnectorDefinition } from '../types.ts';
import type { ConformanceOptions } from './options.ts';
import { conformanceSuite } from './suite.ts';

/** Per-case ceiling; the cases themselves use far shorter deadlines against the loopback mock. */
const CASE_TIMEOUT_MS = 15_000;

/**
 * Generates the conformance suite for one connector: one vitest test per applicable case, named
 * by its stable id. Call it once, at the top level of the connector's test file.
 */
export function runConnectorConformance(definition: ConnectorDefinition, options: ConformanceOptions): void {
  const suite = conformanceSuite(definition, options);
  describe(`conformance: ${suite.connectorId}`, () => {
    beforeAll(() => suite.setup());
    afterAll(() => suite.teardown());
    for (const c of suite.cases) {
      if (c.skip !== undefined) it.skip(`${c.id} (skipped: ${c.skip})`, () => {});
      else it(`${c.id}: ${c.title}`, () => c.run(), CASE_TIMEOUT_MS);
    }
  });
}
