import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createLogDestination } from './connector.ts';

/** Log destination: writes delivered SETs to standard output. */
export const logDestination = defineConnector({
  manifest: {
    id: 'log',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'stable',
    displayName: 'Log (standard output)',
    description:
      'Writes every delivered SET to standard output, decoded as one JSON line or as the compact JWT.',
    accepts: ['*'],
  },
  configSchema,
  examples: [{ title: 'Decoded JSON lines', config: { format: 'decoded' } }],
  create: (ctx, config) => createLogDestination(ctx, config),
});
