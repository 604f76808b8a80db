/**
 * What every part of the transmitter shares: configuration, the store, the routing index, the
 * long-poll signal, metrics and the rendering context of stream configurations.
 */
import type { Clock, Logger } from '../plugin-api/types.ts';
import { ConfigError } from '../plugin-api/errors.ts';
import type { Store } from '../storage/types.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';
import { CAEP_BASE, RISC_BASE, SSF_BASE } from '../ssf/events/common.ts';
import type { EventCatalog } from '../ssf/events/catalog.ts';
import { DEFAULT_PROFILE, getProfile } from '../ssf/profiles/index.ts';
import type { TransmitterConfig } from './config.ts';
import type { QueueSignal } from './poll.ts';
import type { RoutingIndex } from './routing.ts';
import type { RenderContext } from './stream-model.ts';

export interface TransmitterMetrics {
  served: { inc(labels: { method: string }, value?: number): void };
  pushFailures: { inc(labels: { err: string }): void };
  setErrors: { inc(labels: { err: string }): void };
  dropped: { inc(labels: { reason: string }, value?: number): void };
  statusChanges: { inc(labels: { status: string; initiator: string }): void };
  /** Removes a deleted stream's delivery series (`destination="stream:<id>"`) from every metric. */
  forgetDestination(destinationId: string): Promise<void>;
}

export function transmitterMetrics(registry: MetricsRegistry): TransmitterMetrics {
  return {
    served: registry.counter(
      'ssf_bridge_transmitter_sets_total',
      'SETs handed to receivers (pushed or polled)',
      ['method'],
    ),
    pushFailures: registry.counter(
      'ssf_bridge_transmitter_push_failures_total',
      'Pushes a receiver refused or that failed, by RFC 8935 err code or failure kind',
      ['err'],
    ),
    setErrors: registry.counter(
      'ssf_bridge_transmitter_set_errors_total',
      'SETs receivers reported as invalid in poll setErrs, by err code',
      ['err'],
    ),
    dropped: registry.counter(
      'ssf_bridge_transmitter_events_dropped_total',
      'Events not delivered to a stream, by reason',
      ['reason'],
    ),
    statusChanges: registry.counter('ssf_bridge_transmitter_status_changes_total', 'Stream status changes', [
      'status',
      'initiator',
    ]),
    forgetDestination: (destinationId) => registry.forget({ destination: destinationId }),
  };
}

export interface TransmitterContext {
  config: TransmitterConfig;
  store: Store;
  clock: Clock;
  logger: Logger;
  index: RoutingIndex;
  signal: QueueSignal;
  metrics: TransmitterMetrics;
  render: RenderContext;
  /** How a client's SETs are shaped, and how its streams are rendered (see receiverTargets). */
  targetOf(clientId: string): ReceiverTarget;
  /** This instance's identity for store leases. */
  holder: string;
}

/** A receiver's target profile, and its streams' rendering: the event types the profile takes. */
export interface ReceiverTarget {
  profile: string;
  profileOptions?: Record<string, unknown>;
  render: RenderContext;
}

/**
 * The targets of the configured receivers, and the default (ssf-1.0, every supported type) for
 * any other client. A receiver of a narrower profile is offered only the types it takes, so its
 * streams never queue an event its profile would refuse.
 */
export function receiverTargets(
  config: TransmitterConfig,
  render: RenderContext,
): (clientId: string) => ReceiverTarget {
  const fallback: ReceiverTarget = { profile: DEFAULT_PROFILE, render };
  const targets = new Map<string, ReceiverTarget>();
  for (const receiver of config.receivers) {
    if (receiver.profile === DEFAULT_PROFILE && receiver.profile_options === undefined) continue;
    const accepts = getProfile(receiver.profile).accepts;
    const supported =
      accepts === undefined ? render.supported : render.supported.filter((uri) => accepts.includes(uri));
    targets.set(receiver.client_id, {
      profile: receiver.profile,
      ...(receiver.profile_options === undefined ? {} : { profileOptions: receiver.profile_options }),
      // The issuer may be known only once the server listens: read through to the shared context.
      render: Object.create(render, {
        supported: { value: supported },
        supportedSet: { value: new Set(supported) },
      }) as RenderContext,
    });
  }
  return (clientId) => targets.get(clientId) ?? fallback;
}

const CONTROL_TYPES = new Set([`${SSF_BASE}verification`, `${SSF_BASE}stream-updated`]);

/** Verification and stream-updated events: delivered whatever a stream's status and events. */
export function isControlEventType(uri: string): boolean {
  return CONTROL_TYPES.has(uri);
}

/**
 * The event types offered to receivers: the configured list, or every current CAEP and RISC
 * type. SSF's own events are never listed (SSF 1.0 §8.1.4, §8.1.5: always sent).
 */
export function supportedEventTypes(config: TransmitterConfig, catalog: EventCatalog): string[] {
  if (config.streams.events_supported === undefined) {
    return catalog
      .list()
      .filter((d) => !d.deprecated && (d.uri.startsWith(CAEP_BASE) || d.uri.startsWith(RISC_BASE)))
      .map((d) => d.uri);
  }
  const uris = config.streams.events_supported.map((name) => {
    const definition = catalog.find(name);
    if (!definition) {
      throw new ConfigError(`transmitter.streams.events_supported: unknown event type "${name}"`, {
        code: 'SSF_ERR_TRANSMITTER_EVENT_TYPE_UNKNOWN',
      });
    }
    if (isControlEventType(definition.uri)) {
      throw new ConfigError(
        `transmitter.streams.events_supported: ${definition.shortName} is always delivered; do not list it`,
        { code: 'SSF_ERR_TRANSMITTER_EVENT_TYPE_CONTROL' },
      );
    }
    return definition.uri;
  });
  return [...new Set(uris)];
}
