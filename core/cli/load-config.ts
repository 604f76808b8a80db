import { loadConfigFile, loadConfigText, type LoadedConfig } from '../config/index.ts';
import { foundationShape } from '../config/schema.ts';
import { configCrossChecks, defaultRegistry } from '../runtime/defaults.ts';
import { QUICKSTART_CONFIG } from '../runtime/quickstart.ts';
import { CliExit, EXIT, type CliIo } from './io.ts';

/**
 * Loads a config file the way `ssf-bridge run` does, plugins included. Every problem is printed
 * and the command exits 2, so a tool never acts on a config the bridge would refuse.
 */
export async function loadCliConfig(file: string, io: CliIo): Promise<LoadedConfig> {
  const result = await loadConfigFile(file, {
    registry: defaultRegistry(),
    crossChecks: configCrossChecks(),
  });
  if (result.ok) return result.config;
  io.err(`${file}: ${result.problems.length} problem(s)`);
  for (const p of result.problems) io.err(`  ${p.path}: ${p.message}`);
  throw new CliExit(EXIT.invalid, '');
}

/**
 * The config of the bridge a maintenance command works on: `--config`, else SSF_BRIDGE_CONFIG,
 * else the quickstart's (so commands reach the store `ssf-bridge run` without a file uses).
 */
export async function loadBridgeConfig(file: string | undefined, io: CliIo): Promise<LoadedConfig> {
  const chosen = file ?? process.env.SSF_BRIDGE_CONFIG;
  if (chosen !== undefined && chosen !== '') return loadCliConfig(chosen, io);
  const result = await loadConfigText(QUICKSTART_CONFIG, {
    registry: defaultRegistry(),
    crossChecks: configCrossChecks(),
  });
  if (result.ok) return result.config;
  throw new CliExit(
    EXIT.invalid,
    `quickstart config: ${result.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
  );
}

/**
 * A `--data-dir` given on the command line, held to the config's rules for `data_dir` (not
 * under /proc or /sys, where a recursive mkdir never returns): the option bypasses the config.
 */
export function cliDataDir(dir: string): string {
  const checked = foundationShape.data_dir.safeParse(dir);
  if (!checked.success) {
    throw new CliExit(EXIT.invalid, `--data-dir ${dir}: ${checked.error.issues[0]?.message ?? 'invalid'}`);
  }
  return dir;
}
