import { randomUUID } from 'node:crypto';
import {
  usableEmail,
  PermanentError,
  type EventDraft,
  type MappingResult,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';
import type { ScimServiceConfig } from './config.ts';
import {
  ENTERPRISE_SCHEMA,
  LIST_SCHEMA,
  SEARCH_SCHEMA,
  USER_SCHEMA,
  ScimError,
  applyPatch,
  getAttr,
  matches,
  normaliseUser,
  withoutWriteOnly,
  parseFilter,
  type Resource,
} from './scim.ts';

/** Read access to the stored users. */
export interface UserView {
  get(id: string): Resource | undefined;
  all(): Iterable<Resource>;
}

export interface ScimRequest {
  method: string;
  /** Path below the service root, e.g. `/Users/2819c223`. */
  path: string;
  query: Record<string, string | undefined>;
  body: unknown;
  /** The service root clients use, for meta.location. */
  baseUrl: string;
}

export interface ScimResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** A change to store: the user after the request, or null when it was deleted. */
  write?: { id: string; user: Resource | null };
  events: EventDraft[];
  ignored?: string;
}

/** The primary email (else the work one, else the first), or the userName when it is an email. */
export function primaryEmail(user: Resource): string | undefined {
  const emails = getAttr(user, 'emails');
  const list = Array.isArray(emails)
    ? (emails.filter((e) => typeof e === 'object' && e !== null) as Resource[])
    : [];
  const pick =
    list.find((e) => getAttr(e, 'primary') === true && usableEmail(getAttr(e, 'value'))) ??
    list.find(
      (e) => String(getAttr(e, 'type') ?? '').toLowerCase() === 'work' && usableEmail(getAttr(e, 'value')),
    ) ??
    list.find((e) => usableEmail(getAttr(e, 'value')));
  return usableEmail(pick ? getAttr(pick, 'value') : undefined) ?? usableEmail(getAttr(user, 'userName'));
}

export function subjectOf(user: Resource, config: ScimServiceConfig): SubjectIdentifier | undefined {
  const email = primaryEmail(user);
  const externalId = getAttr(user, 'externalId');
  const sub = typeof externalId === 'string' && externalId.trim() ? externalId.trim() : String(user.id);
  const alias: SubjectIdentifier = { format: 'iss_sub', iss: config.id_issuer, sub };
  if (config.subject_format === 'email') return email ? { format: 'email', email } : undefined;
  return email ? { format: 'aliases', identifiers: [{ format: 'email', email }, alias] } : alias;
}

function versionOf(user: Resource | undefined): number {
  const meta = user ? getAttr(user, 'meta') : undefined;
  const version = meta && typeof meta === 'object' ? (meta as Resource).version : undefined;
  const n = typeof version === 'string' ? Number(/(\d+)/.exec(version)?.[1]) : NaN;
  return Number.isFinite(n) ? n : 0;
}

const NO_SUBJECT = 'the user has no email address, and subject_format is email';

/** The events a change of a stored user calls for. */
export function changeEvents(
  before: Resource,
  after: Resource,
  config: ScimServiceConfig,
): { events: EventDraft[]; ignored?: string } {
  const id = String(after.id);
  const version = versionOf(after);
  const events: EventDraft[] = [];
  const notes: string[] = [];
  const pairs: Array<[string, string, string]> = [];
  const oldEmail = primaryEmail(before);
  const newEmail = primaryEmail(after);
  if (oldEmail && newEmail && oldEmail.toLowerCase() !== newEmail.toLowerCase()) {
    pairs.push([oldEmail, newEmail, 'email']);
  }
  const oldName = getAttr(before, 'userName');
  const newName = getAttr(after, 'userName');
  if (
    typeof oldName === 'string' &&
    typeof newName === 'string' &&
    oldName.toLowerCase() !== newName.toLowerCase()
  ) {
    const from = usableEmail(oldName);
    const to = usableEmail(newName);
    if (from && to) {
      if (
        !pairs.some(
          ([f, t]) => f.toLowerCase() === from.toLowerCase() && t.toLowerCase() === to.toLowerCase(),
        )
      ) {
        pairs.push([from, to, 'username']);
      }
    } else {
      notes.push('userName changed, but RISC identifier-changed takes only email or phone subjects');
    }
  }
  for (const [from, to, kind] of pairs) {
    events.push({
      type: 'risc.identifier-changed',
      subject: { format: 'email', email: from },
      claims: { 'new-value': to },
      // The version tells a change back and forth (a → b → a → b) from a retry of the first.
      sourceRecordId: `${id}:${kind}-changed:${from.toLowerCase()}:${to.toLowerCase()}:${version}`,
    });
  }
  const wasActive = getAttr(before, 'active') !== false;
  const isActive = getAttr(after, 'active') !== false;
  if (wasActive !== isActive) {
    const subject = subjectOf(after, config);
    if (!subject) notes.push(NO_SUBJECT);
    else if (!isActive) {
      const sourceRecordId = `${id}:deactivated:${version}`;
      events.push(
        { type: 'risc.account-disabled', subject, claims: {}, sourceRecordId },
        {
          type: 'caep.session-revoked',
          subject,
          claims: { initiating_entity: 'admin', reason_admin: { en: config.reason_admin } },
          sourceRecordId,
        },
      );
    } else {
      events.push({
        type: 'risc.account-enabled',
        subject,
        claims: {},
        sourceRecordId: `${id}:activated:${version}`,
      });
    }
  }
  if (events.length > 0) return { events };
  return {
    events: [],
    ignored: notes.length > 0 ? notes.join('; ') : 'no change to active, userName or primary email',
  };
}

function checkUnique(view: UserView, user: Resource, exceptId?: string): void {
  const name = String(getAttr(user, 'userName')).toLowerCase();
  for (const other of view.all()) {
    if (other.id === exceptId) continue;
    if (String(getAttr(other, 'userName')).toLowerCase() === name) {
      throw new ScimError(
        409,
        `userName "${String(getAttr(user, 'userName'))}" is already taken`,
        'uniqueness',
      );
    }
  }
}

function checkUser(user: Resource): void {
  const userName = getAttr(user, 'userName');
  if (typeof userName !== 'string' || userName.trim() === '') {
    throw new ScimError(400, 'userName is required', 'invalidValue');
  }
  const active = getAttr(user, 'active');
  if (active !== undefined && typeof active !== 'boolean') {
    throw new ScimError(400, 'active must be true or false', 'invalidValue');
  }
}

function meta(baseUrl: string, id: string, created: string, now: Date, version: number): Resource {
  return {
    resourceType: 'User',
    created,
    lastModified: now.toISOString(),
    location: `${baseUrl}/Users/${encodeURIComponent(id)}`,
    version: `W/"${version}"`,
  };
}

function createdOf(user: Resource, now: Date): string {
  const m = getAttr(user, 'meta');
  const created = m && typeof m === 'object' ? (m as Resource).created : undefined;
  return typeof created === 'string' ? created : now.toISOString();
}

function intParam(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new ScimError(400, `${name} must be an integer`, 'invalidValue');
  return n;
}

function list(view: UserView, params: Record<string, unknown>, config: ScimServiceConfig): ScimResult {
  const filterText = params.filter;
  const filter = typeof filterText === 'string' && filterText.trim() ? parseFilter(filterText) : undefined;
  const startIndex = Math.max(1, intParam(params.startIndex, 'startIndex', 1));
  const count = Math.min(
    Math.max(0, intParam(params.count, 'count', config.max_results)),
    config.max_results,
  );
  const found = [...view.all()]
    .filter((u) => !filter || matches(filter, u))
    .sort(
      (a, b) =>
        createdOf(a, new Date(0)).localeCompare(createdOf(b, new Date(0))) ||
        String(a.id).localeCompare(String(b.id)),
    );
  const page = found.slice(startIndex - 1, startIndex - 1 + count);
  return {
    status: 200,
    body: {
      schemas: [LIST_SCHEMA],
      totalResults: found.length,
      startIndex,
      itemsPerPage: page.length,
      Resources: page,
    },
    events: [],
    ignored: 'a read',
  };
}

/** ServiceProviderConfig, ResourceTypes and Schemas (RFC 7644 §4), for clients that discover. */
function discovery(segments: string[], baseUrl: string, config: ScimServiceConfig): ScimResult | undefined {
  const [head, name] = segments;
  if (head === 'ServiceProviderConfig' && !name) {
    return {
      status: 200,
      events: [],
      ignored: 'a read',
      body: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
        patch: { supported: true },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: config.max_results },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: false },
        authenticationSchemes: [
          {
            type: 'oauthbearertoken',
            name: 'Bearer token',
            description: 'Authorization: Bearer <token>',
            primary: true,
          },
        ],
        meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
      },
    };
  }
  const userType = {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
    id: 'User',
    name: 'User',
    endpoint: '/Users',
    schema: USER_SCHEMA,
    schemaExtensions: [{ schema: ENTERPRISE_SCHEMA, required: false }],
    meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/User` },
  };
  if (head === 'ResourceTypes') {
    if (!name) {
      return {
        status: 200,
        events: [],
        ignored: 'a read',
        body: {
          schemas: [LIST_SCHEMA],
          totalResults: 1,
          startIndex: 1,
          itemsPerPage: 1,
          Resources: [userType],
        },
      };
    }
    if (name === 'User') return { status: 200, body: userType, events: [], ignored: 'a read' };
  }
  const userSchema = {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
    id: USER_SCHEMA,
    name: 'User',
    description: 'User account',
    attributes: [
      {
        name: 'userName',
        type: 'string',
        multiValued: false,
        required: true,
        caseExact: false,
        mutability: 'readWrite',
        returned: 'default',
        uniqueness: 'server',
      },
      {
        name: 'externalId',
        type: 'string',
        multiValued: false,
        required: false,
        caseExact: true,
        mutability: 'readWrite',
        returned: 'default',
        uniqueness: 'none',
      },
      {
        name: 'active',
        type: 'boolean',
        multiValued: false,
        required: false,
        mutability: 'readWrite',
        returned: 'default',
      },
      {
        name: 'displayName',
        type: 'string',
        multiValued: false,
        required: false,
        caseExact: false,
        mutability: 'readWrite',
        returned: 'default',
        uniqueness: 'none',
      },
      {
        name: 'emails',
        type: 'complex',
        multiValued: true,
        required: false,
        mutability: 'readWrite',
        returned: 'default',
      },
      {
        name: 'name',
        type: 'complex',
        multiValued: false,
        required: false,
        mutability: 'readWrite',
        returned: 'default',
      },
      {
        name: 'password',
        type: 'string',
        multiValued: false,
        required: false,
        caseExact: false,
        mutability: 'writeOnly',
        returned: 'never',
        uniqueness: 'none',
      },
    ],
    meta: { resourceType: 'Schema', location: `${baseUrl}/Schemas/${USER_SCHEMA}` },
  };
  if (head === 'Schemas') {
    if (!name) {
      return {
        status: 200,
        events: [],
        ignored: 'a read',
        body: {
          schemas: [LIST_SCHEMA],
          totalResults: 1,
          startIndex: 1,
          itemsPerPage: 1,
          Resources: [userSchema],
        },
      };
    }
    if (name === USER_SCHEMA) return { status: 200, body: userSchema, events: [], ignored: 'a read' };
  }
  return undefined;
}

/**
 * One SCIM request against the stored users: the answer, the change to store, and the events.
 * Pure: the store is read through `view`, and `newId` names a created user.
 */
export function processScim(
  req: ScimRequest,
  view: UserView,
  config: ScimServiceConfig,
  now: Date,
  newId: () => string,
): ScimResult {
  const method = req.method.toUpperCase();
  const segments = req.path.split('/').filter(Boolean);
  const [head, id, extra] = segments;
  if (head === 'Users') {
    if (extra !== undefined) throw new ScimError(404, `no resource at ${req.path}`);
    if (id === '.search') {
      if (method !== 'POST') throw new ScimError(405, '/Users/.search takes POST');
      const body = (req.body ?? {}) as Resource;
      const schemas = getAttr(body, 'schemas');
      if (Array.isArray(schemas) && !schemas.includes(SEARCH_SCHEMA)) {
        throw new ScimError(400, `a search request names the schema ${SEARCH_SCHEMA}`, 'invalidSyntax');
      }
      return list(view, body, config);
    }
    if (id === undefined) {
      if (method === 'GET') return list(view, req.query, config);
      if (method !== 'POST') throw new ScimError(405, `${method} is not allowed on /Users`);
      const user = normaliseUser(req.body);
      checkUnique(view, user);
      const newIdValue = newId();
      const created: Resource = {
        ...user,
        schemas: Array.isArray(user.schemas) ? user.schemas : [USER_SCHEMA],
        id: newIdValue,
        active: user.active ?? true,
        meta: meta(req.baseUrl, newIdValue, now.toISOString(), now, 1),
      };
      return {
        status: 201,
        body: created,
        headers: { location: (created.meta as Resource).location as string },
        write: { id: newIdValue, user: created },
        events: [],
        ignored: 'user created',
      };
    }
    const current = view.get(id);
    if (!current) throw new ScimError(404, `no user ${id}`);
    if (method === 'GET') return { status: 200, body: current, events: [], ignored: 'a read' };
    if (method === 'DELETE') {
      const subject = subjectOf(current, config);
      return {
        status: 204,
        write: { id, user: null },
        events: subject
          ? [{ type: 'risc.account-purged', subject, claims: {}, sourceRecordId: `${id}:deleted` }]
          : [],
        ...(subject ? {} : { ignored: NO_SUBJECT }),
      };
    }
    let next: Resource;
    if (method === 'PUT') {
      const user = normaliseUser(req.body);
      next = { ...user, active: user.active ?? getAttr(current, 'active') ?? true };
    } else if (method === 'PATCH') {
      const body = req.body as Resource | undefined;
      const schemas = body && typeof body === 'object' ? getAttr(body, 'schemas') : undefined;
      if (
        Array.isArray(schemas) &&
        !schemas.some((s) => String(s).toLowerCase() === 'urn:ietf:params:scim:api:messages:2.0:patchop')
      ) {
        throw new ScimError(
          400,
          'a PATCH body is a PatchOp (urn:ietf:params:scim:api:messages:2.0:PatchOp)',
          'invalidSyntax',
        );
      }
      next = applyPatch(current, req.body);
      checkUser(next);
    } else {
      throw new ScimError(405, `${method} is not allowed on /Users/{id}`);
    }
    checkUnique(view, next, id);
    const version = versionOf(current) + 1;
    const stored: Resource = {
      ...next,
      schemas: Array.isArray(next.schemas) ? next.schemas : [USER_SCHEMA],
      id,
      meta: meta(req.baseUrl, id, createdOf(current, now), now, version),
    };
    const change = changeEvents(current, stored, config);
    return { status: 200, body: stored, write: { id, user: stored }, ...change };
  }
  if (method === 'GET') {
    const found = discovery(segments, req.baseUrl, config);
    if (found) return found;
  }
  if (head === 'Groups')
    throw new ScimError(404, 'this service provides Users only; Groups are not supported');
  throw new ScimError(404, `no resource at ${req.path || '/'}`);
}

/** The state `ssf-bridge simulate` carries between requests: the users by id. */
export interface ScimSimulationState {
  users: Record<string, Resource>;
}

/**
 * The pure mapping behind `ssf-bridge simulate`: `{"method", "path", "body", "query"?,
 * "user"?}` — a SCIM request, and optionally the stored user it applies to.
 */
export function mapRequest(
  record: unknown,
  config: ScimServiceConfig,
  state: ScimSimulationState | undefined,
  now: Date,
): MappingResult<ScimSimulationState> {
  if (typeof record !== 'object' || record === null) {
    throw new PermanentError('a SCIM request is {"method", "path", "body"}', {
      code: 'SSF_ERR_SCIM_REQUEST',
    });
  }
  const r = record as Record<string, unknown>;
  if (typeof r.method !== 'string' || typeof r.path !== 'string') {
    throw new PermanentError('a SCIM request needs "method" and "path"', { code: 'SSF_ERR_SCIM_REQUEST' });
  }
  const users = structuredClone(state?.users ?? {});
  if (r.user && typeof r.user === 'object') {
    const user = withoutWriteOnly(r.user as Resource);
    users[String(user.id)] = user;
  }
  const view: UserView = { get: (id) => users[id], all: () => Object.values(users) };
  let result: ScimResult;
  try {
    result = processScim(
      {
        method: r.method,
        path: r.path,
        query: (r.query as Record<string, string>) ?? {},
        body: r.body,
        baseUrl: 'https://bridge.example.com/scim/v2/simulate',
      },
      view,
      config,
      now,
      randomUUID,
    );
  } catch (err) {
    if (err instanceof ScimError) {
      throw new PermanentError(
        `SCIM ${err.status}${err.scimType ? ` ${err.scimType}` : ''}: ${err.message}`,
        {
          code: 'SSF_ERR_SCIM_REQUEST',
        },
      );
    }
    throw err;
  }
  if (result.write) {
    if (result.write.user) users[result.write.id] = result.write.user;
    else delete users[result.write.id];
  }
  const next = { users };
  return result.events.length > 0
    ? { events: result.events, state: next }
    : { events: [], ignored: result.ignored ?? 'no change', state: next };
}
