import { createHash } from 'node:crypto';
import type {
  ConnectorContext,
  OutboundConnector,
  SignedSet,
  SubjectIdentifier,
} from '../../core/plugin-api/index.ts';
import { counted } from '../_shared/outbound-common.ts';
import { pushSet } from '../_shared/outbound-push.ts';
import type { OktaItpConfig } from './config.ts';
import {
  OKTA_DEVICE_RISK,
  OKTA_USER_RISK,
  levelSent,
  prepareForOkta,
  riskSubject,
  subjectText,
  translateForOkta,
} from './mapping.ts';

export const SECURITY_EVENTS_PATH = '/security/api/v1/security-events';

/** One checkpoint per subject: the level last sent to this org for it. */
function checkpointName(kind: string, subject: SubjectIdentifier): string {
  return `okta-level:${createHash('sha256').update(subjectText(kind, subject)).digest('hex').slice(0, 32)}`;
}

/** The subject whose level an accepted Okta risk SET set, read from the event Okta received. */
function sentRisk(set: SignedSet): { kind: string; subject: SubjectIdentifier; level: string } | undefined {
  const kind =
    set.eventType === OKTA_USER_RISK ? 'user' : set.eventType === OKTA_DEVICE_RISK ? 'device' : undefined;
  const inEvent = set.event.subject as Record<string, SubjectIdentifier> | undefined;
  const subject = kind ? inEvent?.[kind] : undefined;
  const level = levelSent(set.event);
  return kind && subject && level ? { kind, subject, level } : undefined;
}

/**
 * Okta Identity Threat Protection: pushes SETs shaped by the okta-itp profile to the org's
 * security-events endpoint. Okta trusts the signature alone (checked against the JWKS of the
 * registered provider), so no Authorization header is sent.
 */
export function createOktaItp(ctx: ConnectorContext, config: OktaItpConfig): OutboundConnector {
  const client = ctx.http.create({ timeoutMs: config.request_timeout });
  const url = `${config.org_url}${SECURITY_EVENTS_PATH}`;
  const pushes = ctx.metrics.counter('okta_itp_sets_total', 'SETs sent to Okta, by outcome', ['outcome']);
  const levels = ctx.checkpoints as ConnectorContext<{ level: string }>['checkpoints'];

  async function remember(set: SignedSet): Promise<void> {
    const sent = sentRisk(set);
    if (!sent) return;
    try {
      await levels.set({ level: sent.level }, checkpointName(sent.kind, sent.subject));
    } catch (err) {
      // Okta has the SET; a lost level only means the next previous_level says "none".
      ctx.logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'could not record the risk level sent',
      );
    }
  }

  return {
    target: {
      audience: config.audience ?? config.org_url,
      profile: 'okta-itp',
      profileOptions: { include_device: config.include_device },
    },
    async start() {},
    async stop() {},
    async prepare(draft) {
      const translated = translateForOkta(draft, config);
      const risk = riskSubject(translated);
      const last = risk ? await levels.get(checkpointName(risk.kind, risk.subject)) : undefined;
      return prepareForOkta(translated, config, last?.level);
    },
    async deliver(set, signal) {
      const receipt = await counted(pushes, {}, () => pushSet(client, url, set, { signal }));
      await remember(set);
      return receipt;
    },
  };
}
