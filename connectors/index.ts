import type { ConnectorDefinition } from '../core/plugin-api/index.ts';
import { eventsApi } from './events-api/index.ts';
import { logDestination } from './log/index.ts';
import { intuneConnector } from './intune/index.ts';
import { jamfProConnector } from './jamf-pro/index.ts';
import { kandjiConnector } from './kandji/index.ts';
import { crowdstrikeFalconConnector } from './crowdstrike-falcon/index.ts';
import { microsoftDefenderConnector } from './microsoft-defender/index.ts';
import { sentineloneConnector } from './sentinelone/index.ts';
import { workdayConnector } from './workday/index.ts';
import { bamboohrConnector } from './bamboohr/index.ts';
import { hibobConnector } from './hibob/index.ts';
import { scimServiceConnector } from './scim-service/index.ts';
import { csvDropConnector } from './csv-drop/index.ts';
import { ssfPush } from './ssf-push/index.ts';
import { oktaItp } from './okta-itp/index.ts';
import { oktaUniversalLogout } from './okta-universal-logout/index.ts';
import { microsoftGraph } from './microsoft-graph/index.ts';
import { googleWorkspace } from './google-workspace/index.ts';
import { scimDeprovision } from './scim-deprovision/index.ts';
import { webhook } from './webhook/index.ts';
import { slack } from './slack/index.ts';
import { genericWebhook } from './generic-webhook/index.ts';
import { oktaSystemLog } from './okta-system-log/index.ts';
import { syslogCef } from './syslog-cef/index.ts';
import { ssfReceiver } from './ssf-receiver/index.ts';

/**
 * First-party connectors, listed explicitly: the runtime never scans the file system.
 * A new connector is added here in one line (see docs/connector-authoring.md).
 */
export const firstPartyConnectors: readonly ConnectorDefinition[] = [
  eventsApi,
  logDestination,
  jamfProConnector,
  intuneConnector,
  kandjiConnector,
  crowdstrikeFalconConnector,
  microsoftDefenderConnector,
  sentineloneConnector,
  workdayConnector,
  bamboohrConnector,
  hibobConnector,
  scimServiceConnector,
  csvDropConnector,
  ssfPush,
  oktaItp,
  oktaUniversalLogout,
  microsoftGraph,
  googleWorkspace,
  scimDeprovision,
  webhook,
  slack,
  genericWebhook,
  oktaSystemLog,
  syslogCef,
  ssfReceiver,
];
