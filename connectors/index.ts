import type { ConnectorDefinition } from '../core/plugin-api/index.ts';
import { eventsApi } from './events-api/index.ts';
import { logDestination } from './log/index.ts';

/**
 * First-party connectors, listed explicitly: the runtime never scans the file system.
 * A new connector is added here in one line (see docs/connector-authoring.md).
 */
export const firstPartyConnectors: readonly ConnectorDefinition[] = [eventsApi, logDestination];
