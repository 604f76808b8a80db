/**
 * PostgreSQL for tests: a unique schema per store, dropped afterwards. Outside CI the suites
 * skip with a visible notice when no server answers; with CI=true they fail instead.
 */
import pg from 'pg';
import { describe, it } from 'vitest';
import { PostgresStore, quoteIdent } from '../postgres/store.ts';

export const POSTGRES_TEST_URL =
  process.env.SSF_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_TEST_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export const postgresAvailable = await reachable();

/** `describe` for suites that need PostgreSQL. */
export function describePostgres(name: string, body: () => void): void {
  if (postgresAvailable) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs PostgreSQL, which must be reachable in CI', () => {
        throw new Error(`PostgreSQL is not reachable at ${POSTGRES_TEST_URL}; CI must start it`);
      });
    });
  } else {
    console.warn(
      `\n[ssf-bridge] NOTICE: PostgreSQL is not reachable at ${POSTGRES_TEST_URL}; skipping "${name}". ` +
        'Start it (or set SSF_TEST_POSTGRES_URL) to run these tests; in CI they are required.\n',
    );
    describe.skip(name, body);
  }
}

let schemas = 0;

/** A fresh schema name, unique across processes and runs. */
export function uniqueSchema(): string {
  schemas += 1;
  return `ssf_test_${process.pid}_${Date.now().toString(36)}_${schemas}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_TEST_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/** Opens a store on a test schema; if opening fails, the schema is dropped before rethrowing. */
export async function openTestPostgresStore(schema = uniqueSchema(), poolSize = 4): Promise<PostgresStore> {
  try {
    return await PostgresStore.open({ url: POSTGRES_TEST_URL, schema, poolSize });
  } catch (err) {
    await dropSchema(schema).catch(() => undefined);
    throw err;
  }
}
