import type { Severity, SubjectIdentifier } from '../plugin-api/types.ts';
import { ConfigError } from '../plugin-api/errors.ts';
import type { RouteConfig, RoutesConfig } from './config.ts';
import { subjectStrings } from './subjects.ts';

/** Severities from lowest to highest. */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const satisfies readonly Severity[];
const SEVERITY_RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 };

/** `*` matches any run of characters, `?` one character; case-insensitive, whole string. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'is');
}

export interface RoutableEvent {
  instanceId: string;
  /** Event type URI. */
  type: string;
  subject: SubjectIdentifier;
  severity?: Severity | undefined;
}

export interface RouteTargets {
  /** Outbound instance ids. */
  destinations: Set<string>;
  /** Streams wanted: every stream covering the subject, the listed ones, or none. */
  streams: 'all' | Set<string>;
}

interface CompiledRoute {
  id: string;
  from: Set<string> | undefined;
  types: Set<string> | undefined;
  subjects: RegExp[] | undefined;
  minSeverity: number | undefined;
  to: string[];
  streams: boolean | string[];
}

/**
 * Routing rules compiled once: event types resolved to URIs, subject globs to expressions.
 * An event goes to the union of the targets of every route it matches.
 */
export class Router {
  readonly #routes: CompiledRoute[];

  /** Outbound instances routes name that are disabled: left out of every route's targets. */
  readonly skipped: Array<{ route: string; instance: string }> = [];

  constructor(
    routes: RoutesConfig,
    resolveEventType: (nameOrUri: string) => string | undefined = (t) => t,
    disabled: ReadonlySet<string> = new Set(),
  ) {
    this.#routes = routes.map((route, index) => {
      const compiled = compile(route, index, resolveEventType);
      for (const instance of compiled.to.filter((id) => disabled.has(id)))
        this.skipped.push({ route: compiled.id, instance });
      return { ...compiled, to: compiled.to.filter((id) => !disabled.has(id)) };
    });
  }

  /** Ids of the routes an event matches (for logs and tests). */
  matching(event: RoutableEvent): string[] {
    return this.#routes.filter((r) => matches(r, event)).map((r) => r.id);
  }

  targets(event: RoutableEvent): RouteTargets {
    const destinations = new Set<string>();
    let streams: 'all' | Set<string> = new Set();
    for (const route of this.#routes) {
      if (!matches(route, event)) continue;
      for (const id of route.to) destinations.add(id);
      if (route.streams === true) streams = 'all';
      else if (Array.isArray(route.streams) && streams !== 'all')
        for (const id of route.streams) streams.add(id);
    }
    return { destinations, streams };
  }
}

function compile(
  route: RouteConfig,
  index: number,
  resolve: (t: string) => string | undefined,
): CompiledRoute {
  const id = route.id ?? `route-${index + 1}`;
  const types = route.event_types?.map((name) => {
    const uri = resolve(name);
    if (uri === undefined) {
      throw new ConfigError(`route ${id}: unknown event type ${name}`, {
        code: 'SSF_ERR_CONFIG_ROUTE_EVENT_TYPE',
      });
    }
    return uri;
  });
  return {
    id,
    from: route.from === '*' ? undefined : new Set(route.from),
    types: types === undefined ? undefined : new Set(types),
    subjects: route.subjects?.map(globToRegExp),
    minSeverity: route.min_severity === undefined ? undefined : SEVERITY_RANK[route.min_severity],
    to: route.to,
    streams: route.streams,
  };
}

function matches(route: CompiledRoute, event: RoutableEvent): boolean {
  if (route.from !== undefined && !route.from.has(event.instanceId)) return false;
  if (route.types !== undefined && !route.types.has(event.type)) return false;
  if (route.minSeverity !== undefined) {
    // An event without a severity, or with one outside low–critical, does not pass the filter.
    const rank = event.severity === undefined ? undefined : SEVERITY_RANK[event.severity];
    if (rank === undefined || !(rank >= route.minSeverity)) return false;
  }
  if (route.subjects !== undefined) {
    const ids = subjectStrings(event.subject);
    if (!route.subjects.some((glob) => ids.some((s) => glob.test(s)))) return false;
  }
  return true;
}
