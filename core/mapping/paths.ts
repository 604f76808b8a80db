/**
 * Record paths an expression reads, so a failing rule can say which part of the record it
 * looked at (`user.email (missing)`) instead of only that the expression gave nothing.
 */

type Node = Record<string, unknown>;

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A path of plain field names (`user.email`, `target[…].alternateId`), or undefined. */
function pathText(node: Node): string | undefined {
  const steps = node.steps;
  if (!Array.isArray(steps) || steps.length === 0) return undefined;
  const names: string[] = [];
  for (const step of steps) {
    if (!isNode(step) || step.type !== 'name' || typeof step.value !== 'string') return undefined;
    const filtered = Array.isArray(step.stages) && step.stages.length > 0;
    names.push(filtered ? `${step.value}[…]` : step.value);
  }
  return names.join('.');
}

/** Every record path the expression's syntax tree reads, in order of appearance, once each. */
export function recordPaths(ast: unknown): string[] {
  const found: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      value.forEach(walk);
      return;
    }
    if (!isNode(value)) return;
    if (value.type === 'path') {
      const text = pathText(value);
      if (text !== undefined) {
        if (!found.includes(text)) found.push(text);
        return;
      }
    }
    // Filter stages read fields relative to their step, not to the record: skip them.
    for (const [key, child] of Object.entries(value)) if (key !== 'stages') walk(child);
  };
  walk(ast);
  return found;
}

const MAX_SHOWN = 60;

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 1)}…` : text;
}

/** The value at a dotted path; arrays give the values of their members. */
function valueAt(record: unknown, path: string): unknown {
  let current: unknown[] = [record];
  for (const raw of path.split('.')) {
    const name = raw.endsWith('[…]') ? raw.slice(0, -3) : raw;
    const next: unknown[] = [];
    for (const item of current.flatMap((v) => (Array.isArray(v) ? v : [v]))) {
      if (isNode(item) && item[name] !== undefined) next.push(item[name]);
    }
    if (next.length === 0) return undefined;
    current = next;
  }
  return current.length === 1 ? current[0] : current;
}

/** `user.email (missing), severity = "urgent"`: what the record holds at each path. */
export function describePaths(record: unknown, paths: readonly string[]): string {
  return paths
    .map((path) => {
      const value = valueAt(record, path);
      return value === undefined ? `${path} (missing)` : `${path} = ${shown(value)}`;
    })
    .join(', ');
}
