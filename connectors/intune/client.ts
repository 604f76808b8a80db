import {
  PermanentError,
  sameOriginLink,
  type HttpClient,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import type { IntuneConfig } from './config.ts';
import { devicePageSchema } from './mapping.ts';
import { entraAuth } from '../_shared/entra-auth.ts';
import { isNotFound } from '../_shared/mdm-poller.ts';

/** The managedDevice properties a scan reads ($select keeps pages small). */
export const SELECTED_FIELDS = [
  'id',
  'deviceName',
  'userPrincipalName',
  'emailAddress',
  'azureADDeviceId',
  'complianceState',
  'lastSyncDateTime',
  'serialNumber',
  'operatingSystem',
  'partnerReportedThreatState',
] as const;

export interface DevicePage {
  devices: unknown[];
  nextLink: string | undefined;
}

/** Microsoft Graph, signed in with the app's client credentials (token cached by the core client). */
export class GraphClient {
  readonly #http: HttpClient;
  readonly #graph: URL;
  readonly #pageSize: number;

  constructor(ctx: InboundContext<unknown>, config: IntuneConfig) {
    const graph = config.graph_url.replace(/\/+$/, '');
    const login = config.login_url.replace(/\/+$/, '');
    this.#graph = new URL(graph);
    this.#pageSize = config.page_size;
    this.#http = ctx.http.create({
      baseURL: `${graph}/v1.0`,
      auth: entraAuth({
        tokenUrl: `${login}/${encodeURIComponent(config.tenant_id)}/oauth2/v2.0/token`,
        clientId: config.client_id,
        scope: `${graph}/.default`,
        credentials: config,
      }),
    });
  }

  /** The first page of the full device list. managedDevices has no delta query: every scan reads all. */
  firstPage(): string {
    return `deviceManagement/managedDevices?$select=${SELECTED_FIELDS.join(',')}&$top=${this.#pageSize}`;
  }

  async page(url: string, signal: AbortSignal): Promise<DevicePage> {
    // The bearer token must never travel to another host.
    sameOriginLink(url, this.#graph, {
      code: 'SSF_ERR_INTUNE_PAGING',
      message: (origin) =>
        origin === undefined
          ? `Graph returned a next link that is not a URL (${JSON.stringify(url)})`
          : `Graph returned a next link to another host (${origin})`,
    });
    const res = await this.#http.get(url, { signal });
    const page = devicePageSchema.safeParse(res.data);
    if (!page.success) {
      throw new PermanentError(
        `Graph answered a managedDevices page without a "value" array: ${page.error.issues
          .map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
          .join('; ')}`,
        { code: 'SSF_ERR_INTUNE_PAYLOAD' },
      );
    }
    return { devices: page.data.value, nextLink: page.data['@odata.nextLink'] };
  }

  /**
   * `GET /deviceManagement/managedDevices/{id}` with the fields a scan reads: the device as Graph
   * has it now, or undefined when Graph answers 404 (Intune no longer has it).
   */
  async device(id: string, signal: AbortSignal): Promise<unknown> {
    try {
      const res = await this.#http.get(
        `deviceManagement/managedDevices/${encodeURIComponent(id)}?$select=${SELECTED_FIELDS.join(',')}`,
        { signal },
      );
      return res.data ?? null;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** A one-device read: proves the credentials, the permission and the endpoint. */
  async probe(signal: AbortSignal): Promise<void> {
    await this.#http.get('deviceManagement/managedDevices?$select=id&$top=1', { signal });
  }
}
