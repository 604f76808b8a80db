import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const operations = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');

interface Rule {
  alert: string;
  expr: string;
}

function documentedRules(): Rule[] {
  const section = operations.slice(operations.indexOf('### Alert rules'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('no yaml block under "### Alert rules" in docs/operations.md');
  const doc = parse(block) as { groups: Array<{ rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

const SET_OPERATOR = /^(and|or|unless)\b/;
const MATCHING = /^(on|ignoring)\s*\(([^)]*)\)\s*/;
const AGGREGATION = '(?:sum|min|max|avg|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)';
const PREFIX_BY = new RegExp(`^${AGGREGATION}\\s+(by|without)\\s*\\(([^)]*)\\)`);
const POSTFIX_BY = new RegExp(`^${AGGREGATION}\\s*\\((.*)\\)\\s*(by|without)\\s*\\(([^)]*)\\)`);

/** Splits an expression at its top-level `and`, `or` and `unless`. */
function splitSetOperators(expr: string): { operands: string[]; operators: string[] } {
  const operands: string[] = [];
  const operators: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < expr.length; i += 1) {
    const c = expr[i]!;
    if (quote) {
      if (c === '\\') i += 1;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if ('({['.includes(c)) depth += 1;
    else if (')}]'.includes(c)) depth -= 1;
    else if (depth === 0 && /\s/.test(c)) {
      const op = SET_OPERATOR.exec(expr.slice(i + 1))?.[1];
      if (op && /\s|\(/.test(expr[i + 1 + op.length] ?? '')) {
        operands.push(expr.slice(start, i).trim());
        operators.push(op);
        i += op.length;
        start = i + 1;
      }
    }
  }
  operands.push(expr.slice(start).trim());
  return { operands, operators };
}

/** The labels an operand's result carries when they are named (`agg by (...)`), else undefined. */
function aggregatedLabels(operand: string): string | undefined {
  const prefix = PREFIX_BY.exec(operand);
  if (prefix) return `${prefix[1]} ${labelList(prefix[2]!)}`;
  const postfix = POSTFIX_BY.exec(operand);
  if (postfix) return `${postfix[2]} ${labelList(postfix[3]!)}`;
  return undefined;
}

const labelList = (list: string) =>
  list
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean)
    .sort()
    .join(',');

/**
 * Why the set operators of an expression may match nothing, or [] when each pairs its sides on
 * the same labels: both sides aggregated `by` the same labels, or an explicit `on`/`ignoring`.
 * Without either, `and` matches series whose whole label sets are equal.
 */
function setOperatorProblems(expr: string): string[] {
  const { operands, operators } = splitSetOperators(expr.replace(/\s+/g, ' '));
  const problems: string[] = [];
  operators.forEach((op, i) => {
    const right = operands[i + 1]!;
    if (MATCHING.test(right)) return;
    const left = aggregatedLabels(operands[i]!);
    if (left === undefined || left !== aggregatedLabels(right)) {
      problems.push(`"${operands[i]}" ${op} "${right}": label sets may differ; use on(...) or ignoring(...)`);
    }
  });
  return problems;
}

describe('documented alert rules', () => {
  it('are found in docs/operations.md', () => {
    const rules = documentedRules();
    expect(rules.length).toBeGreaterThan(5);
    for (const rule of rules) expect(typeof rule.expr, rule.alert).toBe('string');
  });

  it('pair both sides of and/or/unless on the same labels, so they can fire', () => {
    const problems = documentedRules().flatMap((rule) =>
      setOperatorProblems(rule.expr).map((p) => `${rule.alert}: ${p}`),
    );
    expect(problems).toEqual([]);
  });

  it('the check itself tells matching sides from sides that can never match', () => {
    expect(
      setOperatorProblems(
        'max by (destination) (ssf_bridge_queue_depth) > 1000 and deriv(ssf_bridge_queue_depth[15m]) > 0',
      ),
    ).toHaveLength(1);
    expect(setOperatorProblems('max by (a, b) (x) > 1 and max by (b) (y) > 0')).toHaveLength(1);
    expect(setOperatorProblems('max by (a, b) (x) > 1 and max by (b, a) (y) > 0')).toEqual([]);
    expect(setOperatorProblems('sum(x) by (a) > 1 unless sum by (a) (y)')).toEqual([]);
    expect(setOperatorProblems('x > 1 and on (a) y > 0')).toEqual([]);
    expect(setOperatorProblems('x > 1 or ignoring (le) y')).toEqual([]);
    // Inside a label matcher or a function, "and" is not an operator.
    expect(setOperatorProblems('x{route="a and b"} > 1')).toEqual([]);
    expect(setOperatorProblems('max by (a) (x and on (a) y)')).toEqual([]);
  });
});
