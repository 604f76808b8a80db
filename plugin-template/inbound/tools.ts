// `npm run docs | simulate <file> | dev`: see README.md.
import { runAuthoringTool } from '../../core/plugin-api/testing/index.ts';
import { conformanceOptions } from './fake-api.ts';
import { exampleInboundConnector } from './index.ts';

process.exitCode = await runAuthoringTool(exampleInboundConnector, conformanceOptions, process.argv.slice(2));
