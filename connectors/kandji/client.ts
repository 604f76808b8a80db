import { PermanentError, type HttpClient, type InboundContext } from '../../core/plugin-api/index.ts';
import { isNotFound } from '../_shared/mdm-poller.ts';
import type { KandjiConfig } from './config.ts';

/** Kandji's largest page of the device list. */
export const PAGE_SIZE = 300;
const HOUR_MS = 3_600_000;

/** The hourly request allowance is spent: the scan stops and resumes on the next run. */
export class BudgetExhausted extends Error {
  constructor(limit: number) {
    super(`the request budget of ${limit} per hour is used up`);
    this.name = 'BudgetExhausted';
  }
}

/** A sliding one-hour window of requests, so the instance stays within its share of Kandji's limit. */
export class RequestBudget {
  readonly #times: number[] = [];
  constructor(
    readonly limit: number,
    private readonly now: () => number,
  ) {}

  take(): boolean {
    const t = this.now();
    while (this.#times.length > 0 && (this.#times[0] as number) <= t - HOUR_MS) this.#times.shift();
    if (this.#times.length >= this.limit) return false;
    this.#times.push(t);
    return true;
  }

  get used(): number {
    return this.#times.length;
  }
}

/** The Kandji API with the tenant's bearer token; every request is counted against the budget. */
export class KandjiClient {
  readonly #http: HttpClient;
  readonly #budget: RequestBudget;

  constructor(ctx: InboundContext<unknown>, config: KandjiConfig, budget: RequestBudget) {
    this.#budget = budget;
    this.#http = ctx.http.create({
      baseURL: config.api_url.replace(/\/+$/, ''),
      auth: { type: 'bearer', token: config.api_token },
    });
  }

  #spend(): void {
    if (!this.#budget.take()) throw new BudgetExhausted(this.#budget.limit);
  }

  /**
   * One page of `GET /api/v1/devices` (a JSON array), ordered by device id so that devices that
   * check in while the scan reads do not move between pages.
   */
  async listDevices(offset: number, signal: AbortSignal): Promise<unknown[]> {
    this.#spend();
    const res = await this.#http.get('/api/v1/devices', {
      params: { limit: PAGE_SIZE, offset, ordering: 'device_id' },
      signal,
    });
    const body = res.data as unknown;
    if (Array.isArray(body)) return body;
    const results = (body as { results?: unknown } | null)?.results;
    if (Array.isArray(results)) return results;
    throw new PermanentError('Kandji answered the device list with something other than a list of devices', {
      code: 'SSF_ERR_KANDJI_PAYLOAD',
    });
  }

  /** `GET /api/v1/devices/{id}/status`, or undefined when Kandji does not know the device (404). */
  async deviceStatus(deviceId: string, signal: AbortSignal): Promise<unknown> {
    this.#spend();
    try {
      const res = await this.#http.get(`/api/v1/devices/${encodeURIComponent(deviceId)}/status`, { signal });
      return res.data;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * `GET /api/v1/devices/{id}`: the device as Kandji has it now, or undefined when Kandji does not
   * know it (404). This, not the status, tells a deleted device: the status of a device Kandji
   * still lists can answer 404 too (no status yet).
   */
  async device(deviceId: string, signal: AbortSignal): Promise<unknown> {
    this.#spend();
    try {
      const res = await this.#http.get(`/api/v1/devices/${encodeURIComponent(deviceId)}`, { signal });
      return res.data ?? null;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async probe(signal: AbortSignal): Promise<void> {
    this.#spend();
    await this.#http.get('/api/v1/devices', { params: { limit: 1, offset: 0 }, signal });
  }
}
