/**
 * SQLite schema, as numbered migrations. A migration is never edited once released: changes
 * go into a new one, applied in order at open. Times are epoch milliseconds; JSON is text.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const sqliteMigrations: Migration[] = [
  {
    version: 1,
    name: 'outbox, dead letters, checkpoints, dedupe, schedules, streams, leases',
    sql: `
CREATE TABLE events (
  id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  source_record_id TEXT NOT NULL,
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  subject_key TEXT NOT NULL,
  claims TEXT NOT NULL,
  txn TEXT NOT NULL,
  severity TEXT,
  occurred_at INTEGER NOT NULL,
  accepted_at INTEGER NOT NULL
);
CREATE INDEX events_accepted ON events (accepted_at);

CREATE TABLE deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL REFERENCES events (id),
  destination_id TEXT NOT NULL,
  jti TEXT NOT NULL,
  ordering_key TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'delivered', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  due_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_token TEXT,
  enqueued_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_attempt_at INTEGER,
  delivered_at INTEGER,
  dead_at INTEGER,
  last_error TEXT,
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
  expires_at INTEGER NOT NULL
);
CREATE INDEX dedupe_keys_expiry ON dedupe_keys (expires_at);

CREATE TABLE schedules (
  event_id TEXT PRIMARY KEY REFERENCES events (id),
  release_at INTEGER NOT NULL
);
CREATE INDEX schedules_due ON schedules (release_at);

CREATE TABLE checkpoints (
  instance_id TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (instance_id, name)
);

CREATE TABLE streams (
  stream_id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  config TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('enabled', 'paused', 'disabled')),
  status_reason TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX streams_client ON streams (client_id);

CREATE TABLE stream_subjects (
  stream_id TEXT NOT NULL REFERENCES streams (stream_id) ON DELETE CASCADE,
  subject_key TEXT NOT NULL,
  subject TEXT NOT NULL,
  included INTEGER NOT NULL,
  added_at INTEGER NOT NULL,
  PRIMARY KEY (stream_id, subject_key)
);
CREATE INDEX stream_subjects_key ON stream_subjects (subject_key);

CREATE TABLE stream_poll_queue (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  stream_id TEXT NOT NULL,
  jti TEXT NOT NULL,
  event_id TEXT NOT NULL,
  set_jwt TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'error')),
  enqueued_at INTEGER NOT NULL,
  returned_at INTEGER,
  error TEXT,
  error_at INTEGER,
  UNIQUE (stream_id, jti)
);
CREATE INDEX stream_poll_queue_ready ON stream_poll_queue (stream_id, seq) WHERE state = 'queued';

CREATE TABLE leader_leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  acquired_at INTEGER NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'audit log of operator write actions',
    sql: `
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL
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
    // leasing scans heads only. One writer, so the flag needs no lock (see PostgreSQL's).
    sql: `
ALTER TABLE deliveries ADD COLUMN head INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET head = 1 WHERE id IN
  (SELECT MIN(id) FROM deliveries WHERE state IN ('pending', 'leased') GROUP BY ordering_key);
CREATE INDEX deliveries_head ON deliveries (destination_id, due_at, id) WHERE head = 1;
`,
  },
  {
    version: 4,
    name: 'lighter outbox writes: no jti index, dedupe keys stored in their own key order',
    // No query looks a delivery up by jti, yet every insert paid for a B-tree keyed by a hash:
    // one more page at a random place written per accepted event. Dedupe keys (hashes too) kept
    // a rowid table beside the key's index, two B-trees per claim; WITHOUT ROWID keeps one.
    // (Copied in key order, the new table is built by appending rather than at random places.)
    sql: `
DROP INDEX deliveries_jti;
CREATE TABLE dedupe_keys_by_key (
  key TEXT PRIMARY KEY,
  event_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO dedupe_keys_by_key (key, event_id, expires_at) SELECT key, event_id, expires_at FROM dedupe_keys ORDER BY key;
DROP TABLE dedupe_keys;
ALTER TABLE dedupe_keys_by_key RENAME TO dedupe_keys;
CREATE INDEX dedupe_keys_expiry ON dedupe_keys (expires_at);
`,
  },
  {
    version: 5,
    name: 'unfinished deliveries indexed by their finish times, so leasing leaves the indexes alone',
    // A partial index whose condition names a column is rewritten by every update of that
    // column. Conditioned on state, the ordering and per-destination indexes were rewritten by
    // each lease (pending → leased) though the row stayed unfinished; conditioned on the finish
    // times, only accepting and finishing touch them. Unfinished is the same set of rows: a
    // delivered row has delivered_at, a dead one dead_at, and a replay clears dead_at.
    sql: `
DROP INDEX deliveries_due;
DROP INDEX deliveries_order;
CREATE INDEX deliveries_unfinished ON deliveries (destination_id) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX deliveries_order ON deliveries (ordering_key, id) WHERE delivered_at IS NULL AND dead_at IS NULL;
`,
  },
  {
    version: 6,
    name: 'dedupe keys claimed recently: appended to a log, moved into the keyed table in sorted batches',
    // A dedupe key is a hash, so every claim used to insert at a random place in dedupe_keys: one
    // page written to the log per accepted event, which was the largest write of accepting it.
    // Claims now append to dedupe_recent (rowid order: the same few pages), the store keeps them
    // in memory for lookups, and moves them into dedupe_keys a few thousand at a time, in key
    // order, so each page of dedupe_keys is written once per move rather than once per claim.
    sql: `
CREATE TABLE dedupe_recent (
  seq INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  event_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
`,
  },
  {
    version: 7,
    name: 'one-time ids (DPoP proof jtis), refused a second time by every instance',
    sql: `
CREATE TABLE one_time_ids (
  scope TEXT NOT NULL,
  id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (scope, id)
) WITHOUT ROWID;
CREATE INDEX one_time_ids_expiry ON one_time_ids (expires_at);
`,
  },
  {
    version: 8,
    name: 'interrupted attempts: leases of a delivery that expired in a row without an outcome',
    // Counted when a row is leased again while still leased (its worker died, crashed or stalled
    // mid-attempt) and cleared by a recorded retry: the engine dead-letters a delivery whose
    // attempts keep ending with the bridge, instead of crashing it again at every restart.
    sql: `
ALTER TABLE deliveries ADD COLUMN interrupted_attempts INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 9,
    name: 'SETs receivers reported in setErrs, pruned by age',
    sql: `
CREATE INDEX stream_poll_queue_errors ON stream_poll_queue (error_at) WHERE state = 'error';
`,
  },
  {
    version: 10,
    name: 'first attempt of a delivery: max_age counts from it, not from when the row was queued',
    // Counted from enqueued_at, a row that waited untried longer than max_age (a paused stream,
    // a held destination, a failing row ahead of it on its key) was dead-lettered by its first
    // transient failure. Unfinished rows already attempted once have their first attempt in
    // last_attempt_at; for those attempted more often it was not recorded, and enqueued_at keeps
    // the deadline they had. Finished rows need none: a replay starts the count again.
    sql: `
ALTER TABLE deliveries ADD COLUMN first_attempt_at INTEGER;
UPDATE deliveries
SET first_attempt_at = CASE WHEN attempts = 1 THEN COALESCE(last_attempt_at, enqueued_at) ELSE enqueued_at END
WHERE attempts > 0 AND state IN ('pending', 'leased');
`,
  },
  {
    version: 11,
    name: 'dead letters in the order they died: a number each death takes, which lists page by',
    // Paged by id, a letter of an older delivery (or a replayed one) that died after a page was
    // read sorted before that page, and a walk of the pages never listed it. Each death now takes
    // the next number of dead_letter_sequence in its write transaction, so the numbers commit in
    // order. The letters already dead are numbered in the order they died (dead_at, then id); the
    // index names dead_seq alone, so leases and retries, which change the state, leave it alone.
    sql: `
ALTER TABLE deliveries ADD COLUMN dead_seq INTEGER;
UPDATE deliveries SET dead_seq = r.n
FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY dead_at, id) AS n FROM deliveries WHERE state = 'dead') AS r
WHERE deliveries.id = r.id;
CREATE INDEX deliveries_dead_seq ON deliveries (dead_seq) WHERE dead_seq IS NOT NULL;
CREATE TABLE dead_letter_sequence (
  only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
  last_seq INTEGER NOT NULL
);
INSERT INTO dead_letter_sequence (only_row, last_seq) SELECT 1, COALESCE(MAX(dead_seq), 0) FROM deliveries;
`,
  },
];
