/** CAEP 1.0 (Final) event types, §3.1–§3.8. Every one may carry the common claims of §2. */
import { z } from 'zod';
import { CAEP_BASE, caepCommonClaims, credentialType } from './common.ts';
import type { EventTypeDefinition } from './types.ts';

function caep(
  name: string,
  section: string,
  description: string,
  shape: z.ZodRawShape = {},
): EventTypeDefinition {
  return {
    uri: `${CAEP_BASE}${name}`,
    shortName: `caep.${name}`,
    spec: `CAEP 1.0 §${section}`,
    description,
    claims: z.looseObject({ ...caepCommonClaims, ...shape }),
    eventSubject: 'legacy',
    timestamp: true,
  };
}

const RISK_LEVEL = z.enum(['LOW', 'MEDIUM', 'HIGH']);
const COMPLIANCE = z.enum(['compliant', 'not-compliant']);

export const CAEP_EVENT_TYPES: readonly EventTypeDefinition[] = [
  caep('session-revoked', '3.1', 'A session of the subject was revoked.'),
  caep('token-claims-change', '3.2', 'Claims of a token issued to the subject changed.', {
    claims: z
      .record(z.string(), z.unknown())
      .refine((c) => Object.keys(c).length > 0, { message: 'must name at least one changed claim' }),
  }),
  caep('credential-change', '3.3', 'A credential of the subject was created, changed, revoked or deleted.', {
    credential_type: credentialType,
    change_type: z.enum(['create', 'revoke', 'update', 'delete']),
    friendly_name: z.string().optional(),
    x509_issuer: z.string().optional(),
    x509_serial: z.string().optional(),
    fido2_aaguid: z.string().optional(),
  }),
  caep('assurance-level-change', '3.4', 'The authentication assurance level of the subject changed.', {
    namespace: z.string().min(1, 'must name the level namespace, e.g. NIST-AAL or RFC8176'),
    current_level: z.string().min(1),
    previous_level: z.string().min(1).optional(),
    change_direction: z.enum(['increase', 'decrease']).optional(),
  }),
  caep('device-compliance-change', '3.5', 'The compliance status of a device changed.', {
    previous_status: COMPLIANCE,
    current_status: COMPLIANCE,
  }),
  caep('session-established', '3.6', 'A session of the subject was established.', {
    fp_ua: z.string().optional(),
    acr: z.string().optional(),
    amr: z.array(z.string()).optional(),
    ext_id: z.string().optional(),
  }),
  caep('session-presented', '3.7', 'A session of the subject was presented (observed in use).', {
    fp_ua: z.string().optional(),
    ext_id: z.string().optional(),
  }),
  caep('risk-level-change', '3.8', 'The risk level of a principal (user, device, session…) changed.', {
    principal: z.string().min(1, 'must name the principal, e.g. USER or DEVICE'),
    current_level: RISK_LEVEL,
    previous_level: RISK_LEVEL.optional(),
    risk_reason: z.string().optional(),
  }),
];
