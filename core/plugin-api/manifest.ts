import { z } from 'zod';

export const CONNECTOR_ID_PATTERN = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

export const stabilitySchema = z.enum([
  'development',
  'alpha',
  'beta',
  'stable',
  'deprecated',
  'unmaintained',
]);

/** What a connector declares about itself. Validated by defineConnector() and the registry. */
export const manifestSchema = z.strictObject({
  id: z.string().min(2).max(63).regex(CONNECTOR_ID_PATTERN, 'must be kebab-case (e.g. crowdstrike-falcon)'),
  kind: z.enum(['inbound', 'outbound']),
  version: z.string().regex(SEMVER, 'must be a semantic version such as 1.2.0'),
  stability: stabilitySchema,
  displayName: z.string().min(1),
  description: z.string().min(10),
  /** Inbound: event types (URIs or short names) this connector can emit; `*` for pass-through connectors. */
  emits: z.array(z.string().min(1)).optional(),
  /** Outbound: event types (URIs or short names) this connector can deliver or act on; `*` for any. */
  accepts: z.array(z.string().min(1)).optional(),
  capabilities: z
    .strictObject({
      poll: z.boolean().optional(),
      webhook: z.boolean().optional(),
      check: z.boolean().optional(),
      batch: z.boolean().optional(),
      stream: z.boolean().optional(),
      /** Serves SCIM 2.0 resource paths (RFC 7644 §3) at /scim/v2/<instance-id>; needs `webhook`. */
      scim: z.boolean().optional(),
    })
    .default({}),
  /** Conformance-kit cases this connector skips, each with a written reason. */
  conformance: z.strictObject({ skip: z.record(z.string(), z.string().min(10)).optional() }).optional(),
  documentationUrl: z.string().url().optional(),
});

export type ConnectorManifestInput = z.input<typeof manifestSchema>;
export type ConnectorManifest = z.output<typeof manifestSchema>;
