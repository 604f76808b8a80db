import { Container, ContainerModule, type ServiceIdentifier } from 'inversify';
import type { LoadedConfig, ResolvedInstance } from '../config/index.ts';
import type {
  ConnectorContext,
  InboundConnector,
  InboundContext,
  OutboundConnector,
} from '../plugin-api/types.ts';
import { buildConnectorContext, type ContextDeps } from '../runtime/context.ts';
import { TOKENS } from './tokens.ts';

// The only place that calls inversify's container API (load/get/unbind), so a future rename in
// inversify is a one-file change.

/** Root-scoped services every instance context draws on. */
export interface RootServices {
  config: LoadedConfig;
  logger: ContextDeps['logger'];
  metrics: ContextDeps['metrics'];
  clock: ContextDeps['clock'];
  status: ContextDeps['status'];
  scheduler: ContextDeps['scheduler'];
  httpFactoryMaker: ContextDeps['httpFactoryMaker'];
  checkpointStore: ContextDeps['checkpoints'];
  eventSink: ContextDeps['sink'];
  devices: ContextDeps['devices'];
  oneTimeIds: ContextDeps['oneTimeIds'];
}

/** Root container: one per runtime, holding root-scoped services as constant values. */
export function createRootContainer(services: RootServices): Container {
  const root = new Container({ defaultScope: 'Singleton' });
  root.load(
    new ContainerModule(({ bind }) => {
      bind(TOKENS.config).toConstantValue(services.config);
      bind(TOKENS.logger).toConstantValue(services.logger);
      bind(TOKENS.metrics).toConstantValue(services.metrics);
      bind(TOKENS.clock).toConstantValue(services.clock);
      bind(TOKENS.status).toConstantValue(services.status);
      bind(TOKENS.scheduler).toConstantValue(services.scheduler);
      bind(TOKENS.httpFactoryMaker).toConstantValue(services.httpFactoryMaker);
      bind(TOKENS.checkpointStore).toConstantValue(services.checkpointStore);
      bind(TOKENS.eventSink).toConstantValue(services.eventSink);
      bind(TOKENS.devices).toConstantValue(services.devices);
      bind(TOKENS.oneTimeIds).toConstantValue(services.oneTimeIds);
    }),
  );
  return root;
}

export interface InstanceScope {
  container: Container;
  connector: InboundConnector | OutboundConnector;
  abort: AbortController;
}

/** Each root service an instance context draws on, by its name in ContextDeps. */
const CONTEXT_DEPS: ReadonlyArray<readonly [keyof ContextDeps, ServiceIdentifier]> = [
  ['logger', TOKENS.logger],
  ['metrics', TOKENS.metrics],
  ['clock', TOKENS.clock],
  ['status', TOKENS.status],
  ['scheduler', TOKENS.scheduler],
  ['httpFactoryMaker', TOKENS.httpFactoryMaker],
  ['checkpoints', TOKENS.checkpointStore],
  ['sink', TOKENS.eventSink],
  ['devices', TOKENS.devices],
  ['oneTimeIds', TOKENS.oneTimeIds],
];

/**
 * A child container per connector instance. It binds the instance, its abort controller, its
 * context (built from root services) and the connector itself, created by the definition's
 * `create(context, config)` through a resolved-value binding.
 */
export function createInstanceContainer(root: Container, instance: ResolvedInstance): InstanceScope {
  const child = new Container({ parent: root, defaultScope: 'Singleton' });
  child.load(
    new ContainerModule(({ bind }) => {
      bind(TOKENS.instance).toConstantValue(instance);
      bind(TOKENS.instanceAbort).toConstantValue(new AbortController());
      bind(TOKENS.instanceContext).toResolvedValue(
        (inst: ResolvedInstance, abort: AbortController, ...services: unknown[]) =>
          buildConnectorContext(
            inst,
            Object.fromEntries(
              CONTEXT_DEPS.map(([name], i) => [name, services[i]]),
            ) as unknown as ContextDeps,
            abort,
          ),
        [TOKENS.instance, TOKENS.instanceAbort, ...CONTEXT_DEPS.map(([, token]) => token)],
      );
      bind(TOKENS.connector).toResolvedValue(
        (inst: ResolvedInstance, context: ConnectorContext) =>
          inst.definition.kind === 'inbound'
            ? inst.definition.create(context as InboundContext, inst.config)
            : inst.definition.create(context, inst.config),
        [TOKENS.instance, TOKENS.instanceContext],
      );
    }),
  );
  return {
    container: child,
    connector: child.get(TOKENS.connector),
    abort: child.get(TOKENS.instanceAbort),
  };
}

/** Drops an instance's bindings after it stopped, so nothing it held stays reachable. */
export function disposeInstanceContainer(scope: InstanceScope): void {
  scope.container.unbindAll();
}
