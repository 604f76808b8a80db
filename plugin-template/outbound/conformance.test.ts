import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { conformanceOptions } from './fake-api.ts';
import { exampleOutboundConnector } from './index.ts';

runConnectorConformance(exampleOutboundConnector, conformanceOptions);
