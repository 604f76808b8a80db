import { duration, mappingRulesSchema, z } from '../../core/plugin-api/index.ts';

const port = (what: string) => z.number().int().min(1).max(65_535).optional().meta({ description: what });

export const configSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1').meta({
      description:
        'Address the listeners bind to. The default accepts only local senders; use 0.0.0.0 (or ::) to accept senders on the network.',
    }),
    udp_port: port(
      'UDP port to receive syslog datagrams on (one message per datagram). Unset: no UDP listener.',
    ),
    tcp_port: port(
      'TCP port to receive syslog streams on, framed by octet counting or ended by LF or NUL (RFC 6587). Unset: no TCP listener.',
    ),
    max_line_bytes: z.number().int().min(128).max(1_048_576).default(16_384).meta({
      description:
        'Longest message accepted, in bytes; longer ones are dropped whole and counted as oversized.',
    }),
    rate_limit: z
      .strictObject({
        per_second: z
          .number()
          .positive()
          .default(1_000)
          .meta({ description: 'Messages per second each sender address may sustain.' }),
        burst: z
          .number()
          .int()
          .min(1)
          .default(2_000)
          .meta({ description: 'Messages a sender may send at once above the sustained rate.' }),
      })
      .default({ per_second: 1_000, burst: 2_000 })
      .meta({
        description:
          'Token bucket per sender address: a TCP sender over it is slowed until tokens refill, UDP messages over it are dropped and counted. Malformed messages and those no rule matches spend no token.',
      }),
    max_connections: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(256)
      .meta({ description: 'Most TCP connections open at once; more are refused.' }),
    batch_size: z
      .number()
      .int()
      .min(1)
      .max(1_000)
      .default(100)
      .meta({ description: 'Most events handed to the pipeline in one batch.' }),
    batch_wait: duration()
      .prefault('100ms')
      .meta({ description: 'Longest time an event waits for its batch to fill before it is handed on.' }),
    rules: mappingRulesSchema,
  })
  .refine((c) => c.udp_port !== undefined || c.tcp_port !== undefined, {
    message: 'set udp_port, tcp_port or both',
    path: ['udp_port'],
  });

export type SyslogCefConfig = z.output<typeof configSchema>;
