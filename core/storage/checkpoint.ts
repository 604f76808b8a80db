/**
 * Checkpoint values as the stores write them. A compare-and-set write (`CheckpointWrite.expected`)
 * compares the stored value with the expected one: SQLite by this text, PostgreSQL as jsonb.
 */

/** The JSON a checkpoint value is stored as. */
export function checkpointText(value: unknown): string {
  return JSON.stringify(value ?? null);
}
