/**
 * Operations: the admin API (`/admin/...`) and the web console (`/console`). See
 * docs/operations.md and docs/security.md.
 */
import type { FastifyInstance } from 'fastify';
import type { Bridge } from '../runtime/bridge.ts';
import { registerStoreGauges } from './metrics.ts';
import { registerAdmin, type AdminDeps } from './routes.ts';

export {
  adminConfigSchema,
  ADMIN_ROLES,
  type AdminConfig,
  type AdminConfigInput,
  type AdminRole,
} from './config.ts';
export { registerAdmin, type AdminDeps } from './routes.ts';
export { deviceCompliance, type DeviceCompliance, type ComplianceFinding } from './devices.ts';

/** The admin API's services, taken from a bridge whose store, keys and transmitter exist. */
export function bridgeAdminDeps(bridge: Bridge): AdminDeps {
  const { root, instances } = bridge.config;
  return {
    config: root.admin,
    store: bridge.store,
    keys: bridge.keys,
    transmitter: bridge.transmitter,
    status: bridge.status,
    metrics: bridge.metrics,
    clock: bridge.clock,
    logger: bridge.logger.child({ component: 'admin' }),
    instances: instances.map((i) => ({
      id: i.id,
      connector: i.definition.manifest.id,
      kind: i.kind,
      enabled: i.enabled,
    })),
    subjectAliases: root.subjects.aliases,
    futureEvents: root.delivery.future_events,
    issuer: () => bridge.issuer,
    engine: () => {
      try {
        return bridge.deliveryEngine;
      } catch {
        return undefined;
      }
    },
  };
}

/** Mounts the admin API on a bridge's server (before it listens) and its store gauges. */
export function registerBridgeAdmin(server: FastifyInstance, bridge: Bridge): void {
  registerAdmin(server, bridgeAdminDeps(bridge));
  registerStoreGauges(bridge.metrics, bridge.store, bridge.status);
}
