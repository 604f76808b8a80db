import { PermanentError, z, type EventDraft, type MappingResult } from '../../core/plugin-api/index.ts';

/**
 * One alert as the vendor API returns it. Unknown fields are tolerated; the fields the mapping
 * reads are required, so a change on the vendor's side fails here, loudly.
 */
export const alertSchema = z.looseObject({
  id: z.string().min(1),
  kind: z.string().min(1),
  user: z.looseObject({ email: z.email() }),
  created_at: z.iso.datetime({ offset: true }),
  reason: z.string().min(1).optional(),
});

export type Alert = z.output<typeof alertSchema>;

/** Maps one vendor alert to events. Pure: the same alert always gives the same events. */
export function mapAlert(record: unknown): MappingResult {
  const parsed = alertSchema.safeParse(record);
  if (!parsed.success) {
    throw new PermanentError(`malformed alert: ${z.prettifyError(parsed.error)}`, {
      code: 'SSF_ERR_EXAMPLE_INBOUND_ALERT',
    });
  }
  const alert = parsed.data;
  const base = {
    subject: { format: 'email', email: alert.user.email },
    sourceRecordId: alert.id,
    occurredAt: alert.created_at,
  };
  switch (alert.kind) {
    case 'session.terminated':
      return { events: [{ ...base, type: 'caep.session-revoked', claims: sessionClaims(alert) }] };
    case 'user.suspended':
      return { events: [{ ...base, type: 'risc.account-disabled' }] };
    default:
      return { events: [], ignored: `alert kind "${alert.kind}" has no Shared Signals equivalent` };
  }
}

function sessionClaims(alert: Alert): EventDraft['claims'] {
  return {
    initiating_entity: 'admin',
    ...(alert.reason ? { reason_admin: { en: alert.reason } } : {}),
  };
}
