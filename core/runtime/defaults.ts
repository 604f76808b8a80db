import { firstPartyConnectors } from '../../connectors/index.ts';
import type { ConfigProblem, LoadedConfig } from '../config/index.ts';
import { formatPath } from '../config/interpolate.ts';
import { deviceSourceProblem } from '../devices/records.ts';
import { routeReferenceProblems } from '../pipeline/config.ts';
import { findEventType, subjectKey, validateSubject, type SubjectIdentifier } from '../ssf/index.ts';
import { ConnectorRegistry } from './registry.ts';

/** The registry of first-party connectors. */
export function defaultRegistry(): ConnectorRegistry {
  return new ConnectorRegistry(firstPartyConnectors);
}

/** Checks across blocks that need the whole validated config. */
export function configCrossChecks(): Array<(config: LoadedConfig) => ConfigProblem[]> {
  return [routeReferences, routeEventTypes, instanceReferences, subjectAliases];
}

/** Instances a connector's config names (`definition.references`) must exist and fit. */
function instanceReferences(config: LoadedConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const instance of config.instances) {
    if (instance.definition.kind !== 'inbound' || !instance.definition.references) continue;
    for (const ref of instance.definition.references(instance.config)) {
      const target = config.instances.find((i) => i.id === ref.instance);
      const path = `${instance.path}.config.${formatPath(ref.path)}`;
      if (!target) {
        problems.push({ path, message: `no instance "${ref.instance}" in this config` });
        continue;
      }
      const notSource = deviceSourceProblem(ref.instance, {
        connector: target.definition.manifest.id,
        kind: target.kind,
      });
      if (notSource) {
        problems.push({ path, message: notSource });
      } else if (!target.enabled) {
        problems.push({
          path,
          message: `"${ref.instance}" is disabled, so its device records are not kept up to date`,
        });
      }
    }
  }
  return problems;
}

function routeReferences(config: LoadedConfig): ConfigProblem[] {
  const ids = (kind: 'inbound' | 'outbound') =>
    config.instances.filter((i) => i.kind === kind).map((i) => i.id);
  return routeReferenceProblems(config.root.routes, {
    inbound: ids('inbound'),
    outbound: ids('outbound'),
  }).map((p) => ({ path: formatPath(['routes', ...p.path]), message: p.message }));
}

/** Route filters naming event types the catalog does not know would silently match nothing. */
function routeEventTypes(config: LoadedConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  config.root.routes.forEach((route, index) => {
    (route.event_types ?? []).forEach((name, i) => {
      if (!findEventType(name)) {
        problems.push({
          path: formatPath(['routes', index, 'event_types', i]),
          message: `unknown event type "${name}"`,
        });
      }
    });
  });
  return problems;
}

/**
 * Every `subjects.aliases` entry must name valid subjects, as the catalog checks them: a bad
 * `from` would stop start-up, a bad `to` would make events about that subject invalid. Two
 * entries with the same `from` would leave the second unused.
 */
function subjectAliases(config: LoadedConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const froms = new Map<string, number>();
  config.root.subjects.aliases.forEach((alias, index) => {
    for (const side of ['from', 'to'] as const) {
      const path = formatPath(['subjects', 'aliases', index, side]);
      const result = validateSubject(alias[side], { path });
      if (!result.ok) {
        problems.push(...result.problems.map((p) => ({ path: p.path, message: p.message })));
        continue;
      }
      if (side !== 'from') continue;
      const key = subjectKey(result.subject as SubjectIdentifier);
      const earlier = froms.get(key);
      if (earlier === undefined) froms.set(key, index);
      else
        problems.push({
          path,
          message: `the same subject as ${formatPath(['subjects', 'aliases', earlier, 'from'])}; only the first applies`,
        });
    }
  });
  return problems;
}
