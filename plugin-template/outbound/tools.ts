// `npm run docs | simulate <file> | dev`: see README.md.
import { runAuthoringTool } from '../../core/plugin-api/testing/index.ts';
import { conformanceOptions } from './fake-api.ts';
import { exampleOutboundConnector } from './index.ts';

process.exitCode = await runAuthoringTool(
  exampleOutboundConnector,
  conformanceOptions,
  process.argv.slice(2),
);
