import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// What `npm pack` puts in the package a registry or tarball install gets. Such an install runs no
// `prepare` (and has no vite), so the built console must be in it, or /console/ answers 503.

function packedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 60_000,
  });
  const [pack] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
  return pack!.files.map((f) => f.path);
}

describe('the npm package', () => {
  const files = packedFiles();

  it('holds the built console: its page and every asset the page loads', () => {
    const page = readFileSync('core/console/dist/index.html', 'utf8');
    const assets = [...page.matchAll(/(?:src|href)="\/console\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(0);
    expect(files).toContain('core/console/dist/index.html');
    for (const asset of assets) expect(files).toContain(`core/console/dist/${asset}`);
  });

  it('holds the runtime, the connectors, the plugin template and the command, not the project’s own tests', () => {
    for (const path of [
      'core/cli/bin.cjs',
      'core/plugin-api/index.ts',
      'connectors/index.ts',
      'plugin-template/template.json',
      'README.md',
    ]) {
      expect(files).toContain(path);
    }
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('node_modules/'))).toEqual([]);
  });
});
