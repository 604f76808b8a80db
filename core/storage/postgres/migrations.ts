/**
 * PostgreSQL schema, as numbered migrations (never edited once released). Times are epoch
 * milliseconds in BIGINT so both drivers share one time rule; JSON is jsonb.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const postgresMigrations: Migration[] = [
  {
    version: 1,
    name: 'outbox, dead letters, checkpoints, dedupe, schedules, streams, leases',
    sql: `
CREATE TABLE events (
  id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  source_record_id TEXT NOT NULL,
  type TEXT NOT NULL,
  subject JSONB NOT NULL,
  subject_key TEXT NOT NULL,
  claims JSONB NOT NULL,
  txn TEXT NOT NULL,
  severity TEXT,
  occurred_at BIGINT NOT NULL,
  accepted_at BIGINT NOT NULL
);
CREATE INDEX events_accepted ON events (accepted_at);

CREATE TABLE deliveries (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id TEXT NOT NULL REFERENCES events (id),
  destination_id TEXT NOT NULL,
  jti TEXT NOT NULL,
  ordering_key TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'delivered', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  due_at BIGINT NOT NULL,
  lease_owner TEXT,
  lease_token TEXT,
  enqueued_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  last_attempt_at BIGINT,
  delivered_at BIGINT,
  dead_at BIGINT,
  last_error JSONB,
  set_jwt TEXT
);
CREATE INDEX deliveries_due ON deliveries (destination_id, due_at, id) WHERE state IN ('pending', 'leased');
CREATE INDEX deliveries_order ON deliveries (ordering_key, id) WHERE state IN ('pending', 'leased');
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_jti ON deliveries (jti);
CREATE INDEX deliveries_dead ON deliveries (destination_id, dead_at) WHERE state = 'dead';
CREATE INDEX deliveries_delivered ON deliveries (delivered_at) WHERE state = 'delivered';

CREATE TABLE dedupe_keys (
  key TEXT PRIMARY KEY,
  event_id TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX dedupe_keys_expiry ON dedupe_keys (expires_at);

CREATE TABLE schedules (
  event_id TEXT PRIMARY KEY REFERENCES events (id),
  release_at BIGINT NOT NULL
);
CREATE INDEX schedules_due ON schedules (release_at);

CREATE TABLE checkpoints (
  instance_id TEXT NOT NULL,
  name TEXT NOT NULL,
  value JSONB NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (instance_id, name)
);

CREATE TABLE streams (
  stream_id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  config JSONB NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('enabled', 'paused', 'disabled')),
  status_reason TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX streams_client ON streams (client_id);

CREATE TABLE stream_subjects (
  stream_id TEXT NOT NULL REFERENCES streams (stream_id) ON DELETE CASCADE,
  subject_key TEXT NOT NULL,
  subject JSONB NOT NULL,
  included BOOLEAN NOT NULL,
  added_at BIGINT NOT NULL,
  PRIMARY KEY (stream_id, subject_key)
);
CREATE INDEX stream_subjects_key ON stream_subjects (subject_key);

CREATE TABLE stream_poll_queue (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream_id TEXT NOT NULL,
  jti TEXT NOT NULL,
  event_id TEXT NOT NULL,
  set_jwt TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'error')),
  enqueued_at BIGINT NOT NULL,
  returned_at BIGINT,
  error JSONB,
  error_at BIGINT,
  UNIQUE (stream_id, jti)
);
CREATE INDEX stream_poll_queue_ready ON stream_poll_queue (stream_id, seq) WHERE state = 'queued';

CREATE TABLE leader_leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  acquired_at BIGINT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'audit log of operator write actions',
    sql: `
CREATE TABLE audit_log (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail JSONB NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
`,
  },
  {
    version: 3,
    name: 'ordering heads: only the first unfinished delivery of each ordering key is leasable',
    // A lease round used to walk every due row of a destination and skip those waiting behind
    // an earlier row of their ordering key, so its cost grew with the rows queued behind one
    // subject. Now the head of each ordering key (its lowest unfinished id) is flagged, and
    // leasing scans heads only. A transaction that changes which rows of a key are unfinished
    // first locks the key's ordering_locks row, so the flag moves under one writer at a time.
    // Those rows are only locks, made on demand and dropped when the key has nothing
    // unfinished: the table is UNLOGGED (no WAL), and emptied by a crash without loss.
    sql: `
ALTER TABLE deliveries ADD COLUMN head BOOLEAN NOT NULL DEFAULT false;
UPDATE deliveries SET head = true WHERE id IN
  (SELECT MIN(id) FROM deliveries WHERE state IN ('pending', 'leased') GROUP BY ordering_key);
CREATE INDEX deliveries_head ON deliveries (destination_id, due_at, id) WHERE head;
CREATE UNLOGGED TABLE ordering_locks (ordering_key TEXT PRIMARY KEY);
`,
  },
  {
    version: 4,
    name: 'lighter outbox writes: no jti index',
    // No query looks a delivery up by jti, yet every insert paid for a B-tree keyed by a hash.
    sql: `
DROP INDEX IF EXISTS deliveries_jti;
`,
  },
  {
    version: 5,
    name: 'one-time ids (DPoP proof jtis), refused a second time by every instance',
    sql: `
CREATE TABLE one_time_ids (
  scope TEXT NOT NULL,
  id TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (scope, id)
);
CREATE INDEX one_time_ids_expiry ON one_time_ids (expires_at);
`,
  },
  {
    version: 6,
    name: 'interrupted attempts: leases of a delivery that expired in a row without an outcome',
    // See the SQLite migration of the same name.
    sql: `
ALTER TABLE deliveries ADD COLUMN interrupted_attempts INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 7,
    name: 'SETs receivers reported in setErrs, pruned by age',
    sql: `
CREATE INDEX stream_poll_queue_errors ON stream_poll_queue (error_at) WHERE state = 'error';
`,
  },
  {
    version: 8,
    name: 'first attempt of a delivery: max_age counts from it, not from when the row was queued',
    // See the SQLite migration of the same name.
    sql: `
ALTER TABLE deliveries ADD COLUMN first_attempt_at BIGINT;
UPDATE deliveries
SET first_attempt_at = CASE WHEN attempts = 1 THEN COALESCE(last_attempt_at, enqueued_at) ELSE enqueued_at END
WHERE attempts > 0 AND state IN ('pending', 'leased');
`,
  },
  {
    version: 9,
    name: 'dead letters in the order they died: a number each death takes, which lists page by',
    // See the SQLite migration of the same name. Here transactions run side by side, so a death
    // locks the row of dead_letter_sequence before it takes its number and holds it until it
    // commits: a later number never commits before an earlier one.
    sql: `
ALTER TABLE deliveries ADD COLUMN dead_seq BIGINT;
UPDATE deliveries SET dead_seq = r.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY dead_at, id) AS n FROM deliveries WHERE state = 'dead') AS r
WHERE deliveries.id = r.id;
CREATE INDEX deliveries_dead_seq ON deliveries (dead_seq) WHERE dead_seq IS NOT NULL;
CREATE TABLE dead_letter_sequence (
  only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
  last_seq BIGINT NOT NULL
);
INSERT INTO dead_letter_sequence (only_row, last_seq) SELECT true, COALESCE(MAX(dead_seq), 0) FROM deliveries;
`,
  },
];
