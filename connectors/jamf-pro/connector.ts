import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import {
  PermanentError,
  RetryableError,
  retryOnCheckpointConflict,
  type EmitResult,
  type EventDraft,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type InboundResponse,
  type z,
} from '../../core/plugin-api/index.ts';
import { lookupOrder } from '../_shared/mdm-mapping.ts';
import {
  eachLimit,
  logMissingKept,
  lookUpMissing,
  scanningConnector,
  WaitBudget,
  withRetries,
  type ScanOutcome,
} from '../_shared/mdm-poller.ts';
import { JamfClient } from './client.ts';
import type { JamfProConfig } from './config.ts';
import {
  decideComputer,
  decideMobileDevice,
  decideVanished,
  deviceKey,
  deviceStateSchema,
  inventoryIndexSchema,
  inventorySchema,
  mobileDeviceKey,
  mobileDeviceStateSchema,
  nextIndex,
  parseInventory,
  parseWebhook,
  planWebhook,
  vanishedHold,
  type Inventory,
  type InventoryIndex,
} from './mapping.ts';

const INDEX_CHECKPOINT = 'inventory';

/**
 * Serialises work per key (one computer) in this process, so a webhook and the reconciliation here
 * do not race on its state; across instances, commits are compare-and-set (see apply).
 */
class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function allowList(networks: readonly string[]): BlockList | undefined {
  if (networks.length === 0) return undefined;
  const list = new BlockList();
  for (const network of networks) {
    const [address, prefix] = network.trim().split('/') as [string, string | undefined];
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}

function isAllowed(list: BlockList, remote: string): boolean {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remote);
  const address = mapped ? (mapped[1] as string) : remote;
  const family = isIP(address);
  if (family === 0) return false;
  return list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

type AuthOutcome = 'ok' | 'missing' | 'refused';

/**
 * Receives Jamf Pro webhooks at `/ingest/<instance-id>` (JSON or XML), looks the computers they
 * name up in the Jamf Pro API, and turns membership of the configured non-compliant smart groups
 * into CAEP device-compliance-change events. A scheduled reconciliation reads the whole
 * inventory to catch webhooks Jamf Pro did not deliver. Each computer's state is its own
 * checkpoint, committed with its events compare-and-set.
 */
export function createJamfPro(ctx: InboundContext<unknown>, config: JamfProConfig): InboundConnector {
  const client = new JamfClient(ctx, config);
  const refused =
    config.username === undefined
      ? 'Jamf Pro refused the API client credentials'
      : `Jamf Pro refused the credentials of the account "${config.username}"`;
  const log = ctx.logger;
  const networks = allowList(config.allowed_networks);
  const locks = new KeyedMutex();
  const webhooks = ctx.metrics.counter('jamf_pro_webhooks_total', 'Webhook calls by event and outcome', [
    'event',
    'outcome',
  ]);
  const lookups = ctx.metrics.counter('jamf_pro_lookups_total', 'Computer lookups in the Jamf Pro API', [
    'outcome',
  ]);
  const emitted = ctx.metrics.counter('jamf_pro_events_total', 'Compliance events emitted', ['via']);
  const reconciles = ctx.metrics.counter('jamf_pro_reconcile_runs_total', 'Reconciliation scans by outcome', [
    'outcome',
  ]);
  const missingCount = ctx.metrics.counter(
    'jamf_pro_missing_computers_total',
    'Computers missing from a complete reconciliation, by what became of them (present, gone, failed, deferred, held)',
    ['outcome'],
  );

  const auth = config.webhook_auth;
  const expected =
    auth.type === 'basic'
      ? digest(`${auth.username}:${auth.password.reveal()}`)
      : auth.type === 'header'
        ? digest(auth.value.reveal())
        : undefined;

  function authenticate(headers: InboundRequest['headers']): AuthOutcome {
    if (auth.type === 'none' || expected === undefined) return 'ok';
    let presented: string | undefined;
    if (auth.type === 'basic') {
      const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(headers['authorization'] ?? '');
      presented = match ? Buffer.from(match[1] as string, 'base64').toString('utf8') : undefined;
    } else {
      presented = headers[auth.name.toLowerCase()];
    }
    if (presented === undefined || presented.length === 0) return 'missing';
    return timingSafeEqual(digest(presented), expected) ? 'ok' : 'refused';
  }

  /** A device's stored state, and the stored value it was read from (what a commit expects to replace). */
  async function loadDevice<S>(
    key: string,
    schema: z.ZodType<S>,
  ): Promise<{ state: S | undefined; stored: unknown }> {
    const stored = await ctx.checkpoints.get(key);
    if (stored === undefined || stored === null) return { state: undefined, stored };
    const parsed = schema.safeParse(stored);
    if (parsed.success) return { state: parsed.data, stored };
    log.warn({ checkpoint: key }, 'stored device state is not readable; treating the device as first seen');
    return { state: undefined, stored };
  }

  /**
   * Reads a device's state (a computer's or a mobile device's, by `schema`), decides, and
   * commits the events with the new state in one step. One device at a time in this
   * process; across the instances sharing a database the state is committed compare-and-set, and
   * work that met a state another instance committed meanwhile (a webhook here, the
   * reconciliation there) is decided again from that state, a few times.
   */
  async function apply<S>(
    key: string,
    schema: z.ZodType<S>,
    via: 'webhook' | 'reconcile',
    decide: (previous: S | undefined) => {
      events: EventDraft[];
      next: S | null | undefined;
    },
  ): Promise<EmitResult | undefined> {
    return locks.run(key, () =>
      retryOnCheckpointConflict(
        async () => {
          const { state: previous, stored } = await loadDevice(key, schema);
          const decision = decide(previous);
          if (decision.events.length === 0 && decision.next === undefined) return undefined;
          const result = await ctx.emit(
            decision.events,
            decision.next === undefined
              ? undefined
              : { checkpoint: { name: key, value: decision.next, expected: { value: stored } } },
          );
          if (decision.events.length > 0) emitted.inc({ via }, decision.events.length);
          return result;
        },
        (tries) =>
          log.debug(
            { checkpoint: key, tries },
            'the computer changed on another instance meanwhile; deciding again',
          ),
      ),
    );
  }

  function bodyOf(req: InboundRequest): unknown {
    if (req.body !== undefined) return req.body;
    if (req.rawBody.length === 0) {
      throw new PermanentError('the body is empty; Jamf Pro sends the event as JSON or XML', {
        code: 'SSF_ERR_JAMF_PAYLOAD',
      });
    }
    return req.rawBody;
  }

  async function handleWebhook(req: InboundRequest): Promise<InboundResponse> {
    if (networks && !isAllowed(networks, req.remoteAddress)) {
      webhooks.inc({ event: 'unknown', outcome: 'forbidden_network' });
      log.warn({ remote: req.remoteAddress }, 'webhook from an address outside allowed_networks refused');
      return {
        status: 403,
        body: { error: 'forbidden', message: 'the source address is not allowed for this instance' },
      };
    }
    const authOutcome = authenticate(req.headers);
    if (authOutcome !== 'ok') {
      webhooks.inc({
        event: 'unknown',
        outcome: authOutcome === 'missing' ? 'unauthenticated' : 'forbidden',
      });
      if (authOutcome === 'missing') {
        return {
          status: 401,
          ...(auth.type === 'basic' ? { headers: { 'www-authenticate': 'Basic realm="ssf-bridge"' } } : {}),
          body: {
            error: 'unauthorized',
            message:
              auth.type === 'basic'
                ? 'send the webhook with Basic authentication'
                : `send the webhook with the ${auth.type === 'header' ? auth.name : ''} header`,
          },
        };
      }
      return {
        status: 403,
        body: { error: 'forbidden', message: 'the webhook credentials are not valid for this instance' },
      };
    }

    let plan: ReturnType<typeof planWebhook>;
    let event = 'unknown';
    try {
      const webhook = parseWebhook(bodyOf(req));
      event = webhook.webhook.webhookEvent;
      plan = planWebhook(webhook, config);
    } catch (err) {
      if (!(err instanceof PermanentError)) throw err;
      webhooks.inc({ event, outcome: 'invalid' });
      return { status: 400, body: { error: 'invalid_request', message: err.message } };
    }

    if (plan.kind === 'ignored') {
      webhooks.inc({ event, outcome: 'ignored' });
      return { status: 202, body: { accepted: [], duplicates: 0, ignored: plan.reason } };
    }
    if (plan.kind === 'mobile') {
      const { device, source, enrolled } = plan;
      let note: string | undefined;
      const result = await apply(
        mobileDeviceKey(device.jssID),
        mobileDeviceStateSchema,
        'webhook',
        (previous) => {
          const decision = decideMobileDevice(device, source, enrolled, previous, config);
          note = decision.note;
          return decision;
        },
      );
      webhooks.inc({ event, outcome: 'accepted' });
      ctx.status.success();
      return {
        status: 202,
        body: {
          accepted: result?.accepted ?? [],
          duplicates: result?.duplicates ?? 0,
          ...(note ? { notes: [note] } : {}),
        },
      };
    }

    const inventories = new Map<string, Inventory | null>();
    try {
      await eachLimit(plan.lookups, config.lookup_concurrency, async (id) => {
        const raw = await client.computer(id, ctx.signal);
        inventories.set(id, raw === null ? null : parseInventory(raw));
        lookups.inc({ outcome: raw === null ? 'not_found' : 'ok' });
      });
    } catch (err) {
      lookups.inc({ outcome: 'failed' });
      webhooks.inc({ event, outcome: 'lookup_failed' });
      const message = err instanceof Error ? err.message : String(err);
      log.warn({ err: message, event }, 'Jamf Pro API lookup failed');
      // Throttling and outages: 503 + Retry-After, and the reconciliation catches up meanwhile.
      if (err instanceof RetryableError) throw err;
      if (err instanceof PermanentError && err.authFailure) {
        ctx.status.set('permanent_error', `${refused}: ${message}`);
      }
      return {
        status: 502,
        body: { error: 'upstream_error', message: `Jamf Pro API lookup failed: ${message}` },
      };
    }

    const accepted: string[] = [];
    const notes: string[] = [];
    let duplicates = 0;
    const { source } = plan;
    for (const change of plan.changes) {
      const inventory = inventories.get(change.computerId);
      if (inventory === null) {
        notes.push(`computer ${change.computerId} is no longer in Jamf Pro`);
        continue;
      }
      let note: string | undefined;
      const result = await apply(deviceKey(change.computerId), deviceStateSchema, 'webhook', (previous) => {
        const decision = decideComputer(change, source, inventory, previous, config);
        note = decision.note;
        return decision;
      });
      if (note) notes.push(note);
      if (result) {
        accepted.push(...result.accepted);
        duplicates += result.duplicates;
      }
    }
    webhooks.inc({ event, outcome: 'accepted' });
    ctx.status.success();
    return { status: 202, body: { accepted, duplicates, ...(notes.length > 0 ? { notes } : {}) } };
  }

  /** Decides a computer from its inventory, as the reconciliation does. */
  function reconcileComputer(inventory: Inventory): Promise<EmitResult | undefined> {
    return apply(deviceKey(inventory.id), deviceStateSchema, 'reconcile', (previous) =>
      decideComputer(
        { kind: 'inventory', computerId: inventory.id },
        { via: 'reconcile' },
        inventory,
        previous,
        config,
      ),
    );
  }

  /**
   * A computer deleted while the scan pages moves the later ones up a page, so one missing from
   * the pages may still exist: each is looked up on its own (at most vanished_lookups_per_scan per
   * reconciliation, lookup_concurrency at once, those never looked up first). One Jamf Pro still
   * has is decided from what it answers; one whose lookup fails, or that is left for a later
   * reconciliation, keeps its state and stays in the index; only a 404 makes it gone, for the
   * vanished-device policy. Returns the ids gone, and those looked up but not gone.
   */
  async function confirmMissing(
    index: InventoryIndex,
    missing: readonly string[],
    waits: WaitBudget,
    signal: AbortSignal,
    at: string,
  ): Promise<{ gone: string[]; lookedUp: string[]; unconfirmed: number }> {
    const found = await lookUpMissing(
      lookupOrder(missing, (id) => index.looked_up?.[id]),
      {
        limit: config.vanished_lookups_per_scan,
        concurrency: config.lookup_concurrency,
        // The client answers null for a 404.
        lookup: async (id, s) => (await client.computer(id, s)) ?? undefined,
        waits,
        signal,
      },
    );
    missingCount.inc({ outcome: 'present' }, found.present.size);
    missingCount.inc({ outcome: 'gone' }, found.gone.length);
    missingCount.inc({ outcome: 'failed' }, found.failed.length);
    missingCount.inc({ outcome: 'deferred' }, found.deferred.length);
    let malformed = 0;
    for (const raw of found.present.values()) {
      const inventory = inventorySchema.safeParse(raw);
      if (inventory.success) await reconcileComputer(inventory.data);
      else malformed += 1;
    }
    if (malformed > 0) log.warn({ malformed }, 'skipped malformed computers Jamf Pro answered a lookup with');
    for (const id of found.gone) {
      await apply(deviceKey(id), deviceStateSchema, 'reconcile', (previous) =>
        previous ? decideVanished(previous, config, at) : { events: [], next: undefined },
      );
    }
    if (found.gone.length > 0) {
      log.info({ vanished: found.gone, policy: config.vanished_devices }, 'computers no longer in Jamf Pro');
    }
    logMissingKept(log, found, config.vanished_lookups_per_scan, {
      item: 'computer',
      listing: 'the inventory',
      vendor: 'Jamf Pro',
      run: 'reconciliation',
    });
    return {
      gone: found.gone,
      lookedUp: [...found.present.keys(), ...found.failed.map((f) => f.id)],
      unconfirmed: found.failed.length + found.deferred.length,
    };
  }

  async function reconcile(signal: AbortSignal): Promise<ScanOutcome> {
    const waits = new WaitBudget(config.max_retry_wait);
    const listed = new Set<string>();
    let malformed = 0;
    for (let page = 0; ; page += 1) {
      const res = await withRetries(
        () => client.inventoryPage(page, config.page_size, signal),
        waits,
        signal,
      );
      for (const raw of res.results) {
        const parsed = inventorySchema.safeParse(raw);
        if (!parsed.success) {
          malformed += 1;
          const id = (raw as { id?: unknown } | null)?.id;
          if (typeof id === 'string' || typeof id === 'number') listed.add(String(id));
          continue;
        }
        listed.add(parsed.data.id);
        await reconcileComputer(parsed.data);
      }
      if (res.results.length < config.page_size || (page + 1) * config.page_size >= res.totalCount) break;
    }
    if (malformed > 0) log.warn({ malformed }, 'skipped malformed computers in the Jamf Pro inventory');

    const stored = inventoryIndexSchema.safeParse(await ctx.checkpoints.get(INDEX_CHECKPOINT));
    const index: InventoryIndex = stored.success ? stored.data : { ids: [] };
    const missing = index.ids.filter((id) => !listed.has(id));
    const at = ctx.clock.now().toISOString();
    // Asked before any lookup, so that a short listing costs none.
    const hold = vanishedHold(index, listed, config);
    let confirmed: { gone: string[]; lookedUp: string[]; unconfirmed: number } = {
      gone: [],
      lookedUp: [],
      unconfirmed: 0,
    };
    if (hold !== undefined) {
      missingCount.inc({ outcome: 'held' }, missing.length);
      log.warn({ known: index.ids.length, listed: listed.size }, hold);
    } else if (missing.length > 0 && config.vanished_devices !== 'keep') {
      confirmed = await confirmMissing(index, missing, waits, signal, at);
    }
    // Written whatever became of the missing computers: the ones not confirmed gone stay in it.
    await ctx.emit([], {
      checkpoint: {
        name: INDEX_CHECKPOINT,
        value: nextIndex(index, listed, confirmed.gone, confirmed.lookedUp, ctx.clock.now().toISOString()),
      },
    });
    if (hold !== undefined) return { outcome: 'held', problem: hold };
    return confirmed.unconfirmed > 0 ? 'partial' : 'ok';
  }

  const reconciliation = scanningConnector(ctx, {
    task: 'reconcile',
    enabled: config.reconcile,
    everyMs: config.reconcile_interval,
    maxJitterMs: 60_000,
    runs: reconciles,
    refused,
    scan: reconcile,
    probe: (signal) => client.probe(signal),
    answered: 'Jamf Pro answered the inventory query',
  });
  return { ...reconciliation, handleWebhook };
}
