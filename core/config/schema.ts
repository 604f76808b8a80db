import { resolve } from 'node:path';
import { z } from 'zod';
import { duration } from '../plugin-api/duration.ts';
import { isIpOrCidr } from '../http/ssrf.ts';

export const INSTANCE_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const instanceSchema = z.strictObject({
  id: z
    .string()
    .regex(INSTANCE_ID_PATTERN, 'must be 1–63 lowercase letters, digits, "-" or "_"')
    .meta({ description: 'Stable id: state, checkpoints and metrics are keyed by it. Never rename.' }),
  connector: z.string().min(1).meta({ description: 'Connector id (manifest id), e.g. events-api.' }),
  enabled: z
    .boolean()
    .default(true)
    .meta({ description: 'A disabled instance is validated but not started.' }),
  description: z.string().optional(),
  config: z.unknown().optional().meta({ description: "The connector's own settings (see docs/connectors)." }),
});

/**
 * Which proxies in front of the bridge are believed about the client (X-Forwarded-For) and the
 * scheme and host (X-Forwarded-Proto, -Host). Trusting every hop would let a client name its
 * own address by sending X-Forwarded-For, and an address allow-list (jamf-pro's
 * allowed_networks) would then check an address of the client's choosing; `true` therefore
 * trusts the one proxy the connection comes from.
 */
export const trustProxySchema = z
  .union([
    z.boolean(),
    z.number().int().min(1).max(16),
    z.array(z.string().refine(isIpOrCidr, 'must be an IP address or a CIDR block such as 10.0.0.0/8')).min(1),
  ])
  .default(false)
  .meta({
    description:
      'Proxies in front of the bridge whose X-Forwarded-* headers are believed: false (none), true (the one the connection comes from), a number of proxies in a chain, or their addresses and CIDR blocks. The client address is the one the outermost trusted proxy saw.',
  });

/** What Fastify is given as trustProxy: nothing, a function of the hop, or proxy addresses. */
export type FastifyTrustProxy = false | string[] | ((address: string, hop: number) => boolean);

/** Fastify's trustProxy for server.trust_proxy: `true` is one hop, never every hop. */
export function fastifyTrustProxy(value: z.infer<typeof trustProxySchema>): FastifyTrustProxy {
  if (value === false) return false;
  if (Array.isArray(value)) return [...value];
  const hops = value === true ? 1 : value;
  return (_address, hop) => hop < hops;
}

export const serverSchema = z.strictObject({
  host: z.string().default('127.0.0.1').meta({ description: 'Address to listen on.' }),
  port: z
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(8080)
    .meta({ description: 'TCP port (0 picks a free one).' }),
  body_limit_bytes: z
    .number()
    .int()
    .positive()
    .default(1_048_576)
    .meta({ description: 'Largest request body accepted; larger bodies get 413.' }),
  request_timeout: duration('Time allowed for a whole request.').prefault('30s'),
  shutdown_timeout: duration('Time allowed to drain on SIGTERM before exiting.').prefault('15s'),
  trust_proxy: trustProxySchema,
});

export const telemetrySchema = z.strictObject({
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

/** The parts of the root config the foundation owns; other areas add their blocks in root.ts. */
export const foundationShape = {
  issuer: z.url().optional().meta({
    description:
      'Issuer of every SET (iss) and of the SSF configuration; the SSF endpoints derive from it, so in production give the https URL receivers use (the transmitter warns at start about a plain-http issuer on a host other than loopback). Default: http://HOST:PORT.',
  }),
  data_dir: z
    .string()
    .min(1)
    // Kernel file systems hold no data, and Node's recursive mkdir loops forever inside them.
    .refine((dir) => !/^\/(proc|sys)(\/|$)/.test(resolve(dir)), 'must not be under /proc or /sys')
    .default('./data')
    .meta({
      description:
        'Where keys and the SQLite database live. A relative path is relative to the working directory, not to the config file.',
    }),
  server: serverSchema.prefault({}),
  telemetry: telemetrySchema.prefault({}),
  plugins: z.array(z.string().min(1)).default([]).meta({
    description:
      'Third-party connector packages: a package name, looked for beside the config file, then in the working directory, then beside the bridge; or a path relative to the config file.',
  }),
  inbound: z.array(instanceSchema).default([]),
  outbound: z.array(instanceSchema).default([]),
};
