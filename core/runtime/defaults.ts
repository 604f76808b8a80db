import { firstPartyConnectors } from '../../connectors/index.ts';
import type { ConfigProblem, LoadedConfig } from '../config/index.ts';
import { ConnectorRegistry } from './registry.ts';

/** The registry of first-party connectors. */
export function defaultRegistry(): ConnectorRegistry {
  return new ConnectorRegistry(firstPartyConnectors);
}

/** Checks across blocks that need the whole validated config. */
export function configCrossChecks(): Array<(config: LoadedConfig) => ConfigProblem[]> {
  return [];
}
