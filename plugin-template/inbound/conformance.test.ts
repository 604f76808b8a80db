import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { conformanceOptions } from './fake-api.ts';
import { exampleInboundConnector } from './index.ts';

runConnectorConformance(exampleInboundConnector, conformanceOptions);
