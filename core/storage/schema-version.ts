import { ConfigError } from '../plugin-api/errors.ts';

/**
 * Decides whether a store may use a database whose schema is at version `current` when this
 * build's migrations end at `latest`. A newer database is always refused. With `migrate` (the
 * running bridge) an older one is brought up to date; without it (one-shot commands, which must
 * not change the schema under a running bridge of another release) anything but `latest` is
 * refused: an empty database (version 0) and an older one each with their own code.
 */
export function checkSchemaVersion(current: number, latest: number, migrate: boolean): void {
  const detail = { schemaVersion: current, supportedVersion: latest };
  if (current > latest) {
    throw new ConfigError(
      `the database schema is version ${current} but this ssf-bridge knows up to ${latest}; run a newer ssf-bridge or restore a matching backup`,
      { code: 'SSF_ERR_STORAGE_SCHEMA_NEWER', detail },
    );
  }
  if (migrate || current === latest) return;
  if (current === 0) {
    throw new ConfigError('the database has no ssf-bridge schema yet; `ssf-bridge run` creates it', {
      code: 'SSF_ERR_STORAGE_SCHEMA_MISSING',
      detail,
    });
  }
  throw new ConfigError(
    `the database schema is version ${current}, older than this ssf-bridge's ${latest}; run \`ssf-bridge run\` of this release first to upgrade the database`,
    { code: 'SSF_ERR_STORAGE_SCHEMA_OLDER', detail },
  );
}
