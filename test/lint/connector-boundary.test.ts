import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

// Runs the project's real ESLint config on connector source, as `npm test`'s lint step does.
const eslint = new ESLint({ cwd: process.cwd() });

async function lint(code: string, filePath: string) {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('connector import boundary (lint)', () => {
  it('refuses a connector that imports core internals', async () => {
    const messages = await lint(
      "import { StatusBoard } from '../../core/runtime/status.ts';\nexport const x = StatusBoard;\n",
      'connectors/acme-edr/connector.ts',
    );
    expect(messages).toEqual([expect.stringMatching(/^no-restricted-imports: .*public plugin API/)]);
  });

  it('refuses axios, jose, inversify or node-cron in connector code, and decorators', async () => {
    const messages = await lint(
      "import axios from 'axios';\nexport const a = axios;\n",
      'connectors/acme-edr/client.ts',
    );
    expect(messages).toEqual([expect.stringMatching(/only through their context/)]);
  });

  it('accepts a connector that imports only the public plugin API', async () => {
    const messages = await lint(
      "import { defineConnector, z } from '../../core/plugin-api/index.ts';\nexport const x = [defineConnector, z];\n",
      'connectors/acme-edr/index.ts',
    );
    expect(messages).toEqual([]);
  });

  it('keeps inversify inside core/di and core/runtime', async () => {
    const code = "import { Container } from 'inversify';\nexport const c = Container;\n";
    expect(await lint(code, 'core/delivery/worker.ts')).toEqual([
      expect.stringMatching(/Only core\/di and core\/runtime/),
    ]);
    expect(await lint(code, 'core/di/extra.ts')).toEqual([]);
  });
});
