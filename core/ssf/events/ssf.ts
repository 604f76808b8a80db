/** SSF 1.0 stream events (§8.1.4, §8.1.5) and Okta's own event types (Okta ITP receiver schema). */
import { z } from 'zod';
import { OKTA_BASE, SSF_BASE, eventTimestamp, initiatingEntity, reasonMap } from './common.ts';
import type { EventTypeDefinition } from './types.ts';

export const SSF_EVENT_TYPES: readonly EventTypeDefinition[] = [
  {
    uri: `${SSF_BASE}verification`,
    shortName: 'ssf.verification',
    spec: 'SSF 1.0 §8.1.4',
    description: 'Verifies a stream end to end; echoes the state the receiver sent, if any.',
    claims: z.looseObject({ state: z.string().optional() }),
    eventSubject: 'none',
    timestamp: false,
    subjectFormats: ['opaque'],
  },
  {
    uri: `${SSF_BASE}stream-updated`,
    shortName: 'ssf.stream-updated',
    spec: 'SSF 1.0 §8.1.5',
    description: 'The transmitter changed the status of a stream.',
    claims: z.looseObject({
      status: z.enum(['enabled', 'paused', 'disabled']),
      reason: z.string().optional(),
    }),
    eventSubject: 'none',
    timestamp: false,
    subjectFormats: ['opaque'],
  },
];

/** Okta's reason maps must hold an `en` entry. */
const oktaReason = reasonMap.refine((m) => typeof m.en === 'string', {
  message: 'Okta requires an "en" entry, e.g. {"en": "…"}',
});

const OKTA_LEVEL = z.enum(['low', 'medium', 'high', 'secure', 'none']);

function okta(name: string, description: string, shape: z.ZodRawShape): EventTypeDefinition {
  return {
    uri: `${OKTA_BASE}${name}`,
    shortName: `okta.${name}`,
    spec: 'Okta ITP SecurityEventTokenRequestJwtEvents',
    description,
    claims: z
      .looseObject({
        event_timestamp: eventTimestamp,
        initiating_entity: initiatingEntity.optional(),
        reason_admin: oktaReason.optional(),
        reason_user: oktaReason.optional(),
        ...shape,
      })
      .refine((e) => e.reason_admin !== undefined || e.reason_user !== undefined, {
        message: 'Okta requires reason_admin or reason_user',
        path: ['reason_admin'],
      }),
    eventSubject: 'okta',
    timestamp: true,
    vendor: 'okta',
  };
}

export const OKTA_EVENT_TYPES: readonly EventTypeDefinition[] = [
  okta('user-risk-change', 'The risk level Okta holds for a user changed.', {
    current_level: OKTA_LEVEL,
    previous_level: OKTA_LEVEL,
  }),
  okta('device-risk-change', 'The risk level Okta holds for a device changed.', {
    current_level: OKTA_LEVEL,
    previous_level: OKTA_LEVEL,
  }),
  okta('ip-change', 'The IP address of a user session changed.', {
    current_ip_address: z.string().min(1),
    previous_ip_address: z.string().min(1),
  }),
];
