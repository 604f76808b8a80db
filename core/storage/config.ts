import { z } from 'zod';
import { duration } from '../plugin-api/duration.ts';
import { secret } from '../plugin-api/secret.ts';

const sqliteSchema = z.strictObject({
  driver: z.literal('sqlite'),
  path: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'Database file. Defaults to ssf-bridge.db in the data directory.' }),
  synchronous: z.enum(['full', 'normal']).default('full').meta({
    description:
      '`full` syncs every commit to disk and survives power loss; `normal` survives a killed process but may lose the last commits on power loss.',
  }),
  busy_timeout: duration('How long a write waits for another process holding the file.').prefault('5s'),
  lock_wait: duration(
    'How long `ssf-bridge run` waits for another bridge on the same file to stop before giving up with SSF_ERR_STORAGE_IN_USE. 0 (default): give up at once. Set it to start the new bridge of an upgrade beside the old one: it takes over as soon as the old one has drained and stopped.',
  ).prefault('0s'),
  cache_mb: z.number().int().min(1).max(4096).default(16).meta({
    description:
      'Page cache of the database connection in MiB. A larger cache saves disk reads when a large backlog waits; it adds to the memory the process uses.',
  }),
  thread: z.boolean().default(false).meta({
    description:
      'Run the database connection on a thread of its own, so queries and commits never hold up the event loop that serves requests and deliveries. Costs about 30 MB and some CPU per SET; on two cores it bought no throughput once signing left the event loop (see docs/storage.md). One-shot commands (dlq, devices) always keep the connection on their own thread.',
  }),
});

const postgresSchema = z.strictObject({
  driver: z.literal('postgres'),
  url: secret('Connection URL, e.g. postgres://bridge:${env:PGPASSWORD}@db:5432/ssf.'),
  schema: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain SQL identifier')
    .default('public')
    .meta({ description: 'Schema holding the tables; created when missing.' }),
  pool_size: z.int().min(1).max(200).default(10).meta({ description: 'Connections per bridge instance.' }),
  connect_timeout: duration('How long to wait for a connection.').prefault('10s'),
  statement_timeout: duration('Server-side limit for one statement.').prefault('30s'),
  leader_lease: duration(
    'Lifetime of the lease that elects the instance running scheduled pollers; a killed leader is replaced within this plus a third of it.',
  )
    .pipe(z.number().min(1000, 'must be at least 1s'))
    .prefault('15s'),
});

/** The `storage:` block of the root config. Embedded SQLite unless PostgreSQL is chosen. */
export const storageConfigSchema = z
  .discriminatedUnion('driver', [sqliteSchema, postgresSchema])
  .prefault({ driver: 'sqlite' })
  .meta({ description: 'Where events, the outbox, checkpoints and streams are kept.' });

export type StorageConfig = z.output<typeof storageConfigSchema>;
export type StorageConfigInput = z.input<typeof storageConfigSchema>;
