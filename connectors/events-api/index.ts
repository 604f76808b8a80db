import { defineConnector, PermanentError } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createEventsApi } from './connector.ts';
import { mapPayload } from './mapping.ts';

/** Events API: accepts events already in ssf-bridge's normalised form over HTTP. */
export const eventsApi = defineConnector({
  manifest: {
    id: 'events-api',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Events API',
    description:
      'Accepts CAEP, RISC and vendor events in normalised JSON at POST /ingest/<instance-id>, authenticated by a bearer token, and answers 202 once they are durable.',
    // Pass-through: any event type the catalog knows.
    emits: ['*'],
    capabilities: { webhook: true },
  },
  configSchema,
  examples: [{ title: 'Token from the environment', config: { token: '${env:INGEST_TOKEN}' } }],
  map(record, config) {
    const result = mapPayload(record, config.max_events_per_request);
    if (!result.ok)
      throw new PermanentError(result.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    return { events: result.events };
  },
  create: createEventsApi,
});
