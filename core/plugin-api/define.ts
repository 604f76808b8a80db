import { z } from 'zod';
import { manifestSchema, type ConnectorManifestInput } from './manifest.ts';
import type { InboundDefinition, OutboundDefinition, ConnectorDefinition } from './types.ts';
import { ConfigError } from './errors.ts';

type InboundSpec<C extends z.ZodType, S> = Omit<InboundDefinition<C, S>, 'manifest' | 'kind'> & {
  manifest: ConnectorManifestInput & { kind: 'inbound' };
};
type OutboundSpec<C extends z.ZodType> = Omit<OutboundDefinition<C>, 'manifest' | 'kind'> & {
  manifest: ConnectorManifestInput & { kind: 'outbound' };
};

/**
 * Declares a connector. The manifest is validated here, so a malformed connector fails when
 * its module loads, not when an operator first configures it.
 */
export function defineConnector<C extends z.ZodType, S = unknown>(
  spec: InboundSpec<C, S>,
): InboundDefinition<C, S>;
export function defineConnector<C extends z.ZodType>(spec: OutboundSpec<C>): OutboundDefinition<C>;
export function defineConnector(
  spec: InboundSpec<z.ZodType, unknown> | OutboundSpec<z.ZodType>,
): ConnectorDefinition {
  const parsed = manifestSchema.safeParse(spec.manifest);
  if (!parsed.success) {
    const id = typeof spec.manifest?.id === 'string' ? spec.manifest.id : '(no id)';
    throw new ConfigError(`connector ${id} has an invalid manifest:\n${z.prettifyError(parsed.error)}`, {
      code: 'SSF_ERR_PLUGIN_MANIFEST',
    });
  }
  const manifest = parsed.data;
  if (manifest.kind === 'inbound' && (manifest.emits?.length ?? 0) === 0) {
    throw new ConfigError(
      `connector ${manifest.id}: an inbound connector must list the event types it emits`,
      {
        code: 'SSF_ERR_PLUGIN_MANIFEST',
      },
    );
  }
  if (manifest.kind === 'outbound' && (manifest.accepts?.length ?? 0) === 0) {
    throw new ConfigError(
      `connector ${manifest.id}: an outbound connector must list the event types it accepts`,
      {
        code: 'SSF_ERR_PLUGIN_MANIFEST',
      },
    );
  }
  return Object.freeze({ ...spec, manifest, kind: manifest.kind }) as ConnectorDefinition;
}

export function isConnectorDefinition(value: unknown): value is ConnectorDefinition {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<ConnectorDefinition>;
  return (
    (v.kind === 'inbound' || v.kind === 'outbound') &&
    typeof v.create === 'function' &&
    typeof v.manifest === 'object' &&
    v.configSchema instanceof z.ZodType
  );
}
