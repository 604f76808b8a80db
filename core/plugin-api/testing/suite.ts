/**
 * Which cases apply to a connector, which of them it skips (and whether the skip is allowed),
 * and how each runs. Both the vitest binding and programmatic runs use this.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectorDefinition } from '../types.ts';
import { MIN_SKIP_REASON, caseInfo, type CaseInfo } from './cases.ts';
import { SuiteContext, fail } from './context.ts';
import { deliverAbortSignal, pollAbortSignal } from './abort-checks.ts';
import { generatedSection, normalizeGenerated, renderReference } from './docs.ts';
import { countersMatch, secretsNotLogged } from './hygiene-checks.ts';
import {
  atLeastOnce,
  checkpointAfterPersist,
  emptyPoll,
  mappingCatalog,
  mappingDeterministic,
  mappingFixtures,
  pollRequestTimeout,
  refusesMalformed,
  skipsMalformed,
  storedAsMapped,
  webhookAckAfterPersist,
  webhookAuthenticated,
} from './inbound-checks.ts';
import {
  capabilitiesMatch,
  checkStructured,
  createNoIo,
  doubleStop,
  restart,
  stopDeadline,
  stopWithoutStart,
} from './lifecycle-checks.ts';
import type { ConformanceOptions } from './options.ts';
import { classification, deliver, noNetwork, outboundRequestTimeout } from './outbound-checks.ts';
import {
  configDocumented,
  configExamples,
  configInvalid,
  configSecrets,
  configStrict,
  eventTypesKnown,
  idMatchesFolder,
  manifestValid,
  skipsJustified,
} from './static-checks.ts';

type Check = (ctx: SuiteContext) => void | Promise<void>;

export interface ConformanceCase extends CaseInfo {
  /** The manifest's reason, when the case is skipped. */
  skip: string | undefined;
  run(): Promise<void>;
}

export interface ConformanceSuite {
  connectorId: string;
  cases: ConformanceCase[];
  setup(): Promise<void>;
  teardown(): Promise<void>;
}

export interface CaseResult {
  id: string;
  status: 'passed' | 'failed' | 'skipped';
  message?: string;
}

/** A connector package (its folder holds package.json) documents itself in its README.md. */
function isPackage(ctx: SuiteContext): boolean {
  return existsSync(join(ctx.connectorDir, 'package.json'));
}

function docsCurrent(ctx: SuiteContext): void {
  const readme = ctx.readme() ?? '';
  const section = generatedSection(readme);
  if (section === undefined) {
    fail(
      `${join(ctx.connectorDir, 'README.md')} has no generated reference section (its ` +
        '<!-- generated:start --> and <!-- generated:end --> markers); run `npm run docs` to add it',
    );
  }
  const current = normalizeGenerated(section);
  const expected = normalizeGenerated(renderReference(ctx.definition, { fixtures: ctx.fixtures().fixtures }));
  if (current !== expected) {
    fail(
      `${join(ctx.connectorDir, 'README.md')}: the generated reference section is stale; run \`npm run docs\``,
    );
  }
}

/** Case id → check, and whether it applies to this connector. */
function checksFor(ctx: SuiteContext): Array<[string, Check]> {
  const inbound = ctx.definition.kind === 'inbound';
  // An invalid manifest is reported by manifest.valid; the other cases still get a plan.
  const caps = ctx.manifest?.capabilities ?? {};
  const polls = inbound && Boolean(caps.poll);
  // Connectors the kit drives through handleWebhook (those that also poll are driven by polls).
  const webhookOnly = inbound && !polls && Boolean(caps.webhook);
  // Every connector that answers webhooks, polling or not: its webhook is authenticated.
  const webhook = inbound && Boolean(caps.webhook);
  // A polling connector's webhook is sent malformed bodies once the kit knows how to sign them.
  const signedWebhook = webhook && ctx.options.webhook?.request !== undefined;
  const applies: Array<[string, Check, boolean]> = [
    ['manifest.valid', manifestValid, true],
    ['manifest.id-matches-folder', idMatchesFolder, true],
    ['manifest.event-types', eventTypesKnown, true],
    ['manifest.skips', skipsJustified, true],
    ['manifest.capabilities', capabilitiesMatch, true],
    ['config.strict', configStrict, true],
    ['config.documented', configDocumented, true],
    ['config.secrets', configSecrets, true],
    ['config.examples', configExamples, true],
    ['config.invalid', configInvalid, (ctx.options.invalidConfigs?.length ?? 0) > 0],
    ['lifecycle.create-no-io', createNoIo, true],
    ['lifecycle.stop-without-start', stopWithoutStart, true],
    ['lifecycle.double-stop', doubleStop, true],
    ['lifecycle.restart', restart, true],
    ['lifecycle.stop-deadline', stopDeadline, true],
    ['lifecycle.check', checkStructured, Boolean(caps.check)],
    ['mapping.fixtures', mappingFixtures, inbound],
    ['mapping.catalog', mappingCatalog, inbound],
    ['mapping.deterministic', mappingDeterministic, inbound],
    ['delivery.at-least-once', atLeastOnce, inbound],
    ['delivery.checkpoint-after-persist', checkpointAfterPersist, inbound],
    // SCIM resources are addressed by method and path: the kit, which posts fixtures to the
    // instance root, cannot send a SCIM service provider records (its own tests do).
    ['delivery.stored-as-mapped', storedAsMapped, inbound && !(caps.scim && !polls)],
    ['delivery.refuses-malformed', refusesMalformed, webhookOnly || signedWebhook],
    // Every webhook, those of polling connectors included: a 2xx before the events are durable loses them.
    ['delivery.webhook-ack-after-persist', webhookAckAfterPersist, webhook],
    ['delivery.skips-malformed', skipsMalformed, polls],
    ['delivery.empty-poll', emptyPoll, polls],
    [
      'delivery.request-timeout',
      inbound ? pollRequestTimeout : outboundRequestTimeout,
      polls || (!inbound && ctx.networked),
    ],
    [
      'delivery.abort-signal',
      inbound ? pollAbortSignal : deliverAbortSignal,
      polls || (!inbound && ctx.networked),
    ],
    ['delivery.deliver', deliver, !inbound],
    ['delivery.classification', classification, !inbound && ctx.networked],
    ['delivery.no-network', noNetwork, !inbound && !ctx.networked],
    ['hygiene.secrets-not-logged', secretsNotLogged, true],
    ['hygiene.webhook-auth', webhookAuthenticated, webhook],
    ['metrics.counters', countersMatch, true],
    [
      'docs.readme-current',
      docsCurrent,
      isPackage(ctx) || generatedSection(ctx.readme() ?? '') !== undefined,
    ],
  ];
  return applies.filter(([, , on]) => on).map(([id, check]) => [id, check]);
}

/** The manifest's skip for a case, if it is allowed (a bad skip is reported by manifest.skips). */
function allowedSkip(ctx: SuiteContext, info: CaseInfo): string | undefined {
  const reason = ctx.manifest.conformance?.skip?.[info.id];
  if (reason === undefined || reason.trim().length < MIN_SKIP_REASON) return undefined;
  if (info.group === 'delivery' && ctx.manifest.stability === 'stable') return undefined;
  return reason;
}

export function conformanceSuite(
  definition: ConnectorDefinition,
  options: ConformanceOptions,
): ConformanceSuite {
  const ctx = new SuiteContext(definition, options);
  const cases = checksFor(ctx).map(([id, check]): ConformanceCase => {
    const info = caseInfo(id);
    return {
      ...info,
      skip: allowedSkip(ctx, info),
      run: async () => {
        try {
          await ctx.capture.withOutputCaptured(async () => check(ctx));
        } finally {
          await ctx.settleInstances();
        }
      },
    };
  });
  return {
    connectorId: definition.manifest?.id ?? '(invalid manifest)',
    cases,
    setup: async () => void (await ctx.server.start()),
    teardown: () => ctx.server.close(),
  };
}

/** Runs every case and reports each outcome instead of throwing (for tools and the kit's own tests). */
export async function checkConnectorConformance(
  definition: ConnectorDefinition,
  options: ConformanceOptions,
): Promise<CaseResult[]> {
  const suite = conformanceSuite(definition, options);
  const results: CaseResult[] = [];
  await suite.setup();
  try {
    for (const c of suite.cases) {
      if (c.skip !== undefined) {
        results.push({ id: c.id, status: 'skipped', message: c.skip });
        continue;
      }
      try {
        await c.run();
        results.push({ id: c.id, status: 'passed' });
      } catch (err) {
        results.push({
          id: c.id,
          status: 'failed',
          message: err instanceof Error ? err.message : String(err),
        });
      }
    }
  } finally {
    await suite.teardown();
  }
  return results;
}
