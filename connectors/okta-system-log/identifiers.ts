/**
 * RISC identifier-changed from Okta profile updates. Okta's `user.account.update_profile` names
 * the attributes that changed (debugData.changedAttributes) but not their old or new values, so
 * the change is found by comparing the user's profile (GET /api/v1/users/{id}) with the login
 * and email last seen for that user: the login every System Log event names the user by
 * (alternateId), and the profile read at the previous change. Without an earlier value there is
 * nothing to emit: identifier-changed must name the old identifier, and a guessed one would
 * point receivers at the wrong account.
 */
import { isEmailAddress, z, type EventDraft, type MappingResult } from '../../core/plugin-api/index.ts';
import type { OktaSystemLogState } from './config.ts';

export const PROFILE_UPDATE = 'user.account.update_profile';
const IDENTIFIERS = ['login', 'email'] as const;
type Identifier = (typeof IDENTIFIERS)[number];

/** The user object of Okta's Users API, as far as the comparison reads it. */
export const oktaUserSchema = z.looseObject({
  id: z.string().min(1),
  status: z.string().optional(),
  profile: z.looseObject({
    login: z.string().min(1),
    email: z.string().nullish(),
  }),
});

export type OktaUser = z.output<typeof oktaUserSchema>;

/** A record that is an Okta user object (a Users API answer) rather than a System Log event. */
export function isOktaUser(record: unknown): boolean {
  return (
    typeof record === 'object' &&
    record !== null &&
    !('eventType' in record) &&
    'profile' in record &&
    'id' in record
  );
}

/**
 * The identifiers an update_profile changed, from debugData.changedAttributes (a comma-separated
 * list, e.g. "firstName, login, email"); undefined when the event does not say, which may be
 * any of them.
 */
export function changedIdentifiers(debugData: Record<string, unknown>): Identifier[] | undefined {
  const raw = debugData.changedAttributes;
  const names =
    typeof raw === 'string'
      ? raw.split(',')
      : Array.isArray(raw)
        ? raw.filter((n): n is string => typeof n === 'string')
        : undefined;
  if (names === undefined) return undefined;
  const lower = new Set(names.map((n) => n.trim().toLowerCase()));
  return IDENTIFIERS.filter((name) => lower.has(name));
}

type Users = NonNullable<OktaSystemLogState['users']>;

/** Drops the least recently seen users beyond `limit` (a tenth more at once, to sort seldom). */
export function forgetBeyond(users: Users, limit: number): void {
  const ids = Object.keys(users);
  if (ids.length <= limit) return;
  const keep = Math.max(1, Math.floor(limit * 0.9));
  ids.sort((a, b) => Date.parse(users[a]!.at) - Date.parse(users[b]!.at));
  for (const id of ids.slice(0, ids.length - keep)) delete users[id];
}

/** Remembers the login a System Log event names a user by, unless a later reading is known. */
export function rememberLogin(state: OktaSystemLogState, id: string, login: string, at: string): void {
  const users = (state.users ??= {});
  const known = users[id];
  if (known && Date.parse(known.at) > Date.parse(at)) return;
  users[id] = { ...known, login, at };
}

export function forgetUser(state: OktaSystemLogState, id: string): void {
  if (state.users) delete state.users[id];
  if (state.awaiting) delete state.awaiting[id];
}

function same(a: string | undefined, b: string | undefined): boolean {
  return (a ?? '').toLowerCase() === (b ?? '').toLowerCase();
}

/**
 * Compares a user's profile (read after an update_profile) with what was remembered, emits
 * identifier-changed for each login or email that changed from a remembered email address
 * (RISC 1.0 §2.5: the subject is the old identifier, `new-value` the new one), and remembers
 * the profile as the user's current identifiers, read at `now`.
 */
export function compareProfile(
  record: unknown,
  state: OktaSystemLogState,
  now: Date,
  limit: number,
): MappingResult<OktaSystemLogState> {
  const parsed = oktaUserSchema.safeParse(record);
  if (!parsed.success) {
    return {
      events: [],
      ignored: `an Okta user without a usable profile.login: ${z.prettifyError(parsed.error)}`,
      state,
    };
  }
  const user = parsed.data;
  const current = { login: user.profile.login, email: user.profile.email || undefined };
  const known = state.users?.[user.id];
  const awaited = state.awaiting?.[user.id];
  if (state.awaiting) delete state.awaiting[user.id];
  const users = (state.users ??= {});
  users[user.id] = {
    login: current.login,
    ...(current.email ? { email: current.email } : {}),
    at: now.toISOString(),
  };
  forgetBeyond(users, limit);
  if (!awaited) {
    return {
      events: [],
      ignored: `the profile of Okta user ${user.id} is remembered; no profile update awaited it`,
      state,
    };
  }
  const events: EventDraft[] = [];
  const notes: string[] = [];
  for (const name of IDENTIFIERS) {
    const before = known?.[name];
    const after = current[name];
    if (same(before, after)) continue;
    if (before === undefined) {
      notes.push(`the ${name} before the change was never seen, so its change is not emitted`);
      continue;
    }
    if (!isEmailAddress(before)) {
      notes.push(`the old ${name} is no email address, and identifier-changed names only emails or phones`);
      continue;
    }
    if (after === undefined) {
      notes.push(`the ${name} was removed; there is no new value to name`);
      continue;
    }
    const oldValue = before.toLowerCase();
    const newValue = after.toLowerCase();
    // The login and the email are often one address: one change, one event.
    if (events.some((e) => e.subject.email === oldValue && e.claims?.['new-value'] === newValue)) continue;
    events.push({
      type: 'risc.identifier-changed',
      subject: { format: 'email', email: oldValue },
      claims: { 'new-value': newValue },
      sourceRecordId: `${awaited.uuid}:${name}`,
      occurredAt: awaited.published,
    });
  }
  if (events.length > 0) return { events, state };
  const why = notes.length > 0 ? notes.join('; ') : 'neither its login nor its email changed';
  return { events: [], ignored: `profile update ${awaited.uuid} of Okta user ${user.id}: ${why}`, state };
}
