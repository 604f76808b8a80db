/**
 * A JSONata evaluator thread (see evaluator.ts). The engine posts each record here and awaits
 * the answer posted back; a blocking caller also passes a shared flag, set once the answer is
 * posted, to wait on. Each rule set is compiled once per thread.
 */
import { workerData } from 'node:worker_threads';
import jsonata from 'jsonata';

const { port, flag } = workerData;
const signal = flag ? new Int32Array(flag) : undefined;
/** Rule-set id → [{ match: Expression, fields: [[key, Expression]] }]. */
const sets = new Map();

/**
 * Whether a value is a function: JSONata gives its own (a built-in such as `$exists` named
 * without its parentheses, a lambda) as objects marked `_jsonata_function` / `_jsonata_lambda`.
 */
function isFunction(value) {
  if (typeof value === 'function') return true;
  return (
    value !== null &&
    typeof value === 'object' &&
    (value._jsonata_function === true || value._jsonata_lambda === true)
  );
}

/** JSONata's $boolean: empty strings, zero, null, functions, empty arrays and objects are false. */
function truthy(value) {
  if (isFunction(value)) return false;
  if (Array.isArray(value)) return value.some(truthy);
  if (value && typeof value === 'object') return Object.keys(value).length > 0;
  return Boolean(value);
}

/**
 * How deeply a value an expression gives may nest. Far above what any event holds (the catalog
 * allows 32 levels), and far below what the main thread can take back: a value nested thousands
 * deep cannot be copied to it at all.
 */
const MAX_VALUE_DEPTH = 100;

/**
 * What keeps a value from leaving the thread as JSON: a function anywhere in it, or nesting more
 * than `limit` arrays or objects deep (walked iteratively: no stack to run out of).
 */
function unfit(value, limit) {
  const stack = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop();
    if (isFunction(item)) return 'the expression gives a function, not a value';
    if (item === null || typeof item !== 'object') continue;
    if (depth >= limit) return `the expression gives a value nested more than ${limit} levels deep`;
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, depth + 1]);
  }
  return undefined;
}

/**
 * How long a value an expression gives may be, as JSON text. Far above what an event carries (a
 * request body is at most a megabyte by default), and small enough that a rule copying a huge
 * value cannot make the main thread take a copy of it.
 */
const MAX_VALUE_CHARS = 1_048_576;

/** Values as JSON: jsonata sequences carry extra members, and functions cannot cross threads. */
function plain(value) {
  if (value === undefined) return undefined;
  const problem = unfit(value, MAX_VALUE_DEPTH);
  if (problem) throw new Error(problem);
  const text = JSON.stringify(value);
  if (text.length > MAX_VALUE_CHARS)
    throw new Error(`the expression gives a value longer than ${MAX_VALUE_CHARS} characters as JSON`);
  return JSON.parse(text);
}

/**
 * What went wrong, as text. JSONata throws plain objects, not Errors: {code, message, position,
 * token, …}; their code (`T2002`) and position are what its documentation lists them by.
 */
function message(err) {
  if (err instanceof Error) return err.message;
  if (err === null || typeof err !== 'object') return String(err);
  let text = err.message;
  if (typeof text !== 'string') {
    try {
      text = JSON.stringify(err);
    } catch {
      text = String(err);
    }
  }
  const where = [
    typeof err.code === 'string' ? `JSONata ${err.code}` : undefined,
    typeof err.position === 'number' ? `at character ${err.position}` : undefined,
  ].filter(Boolean);
  return where.length > 0 ? `${text} (${where.join(', ')})` : text;
}

async function run(expression, record) {
  try {
    return { value: plain(await expression.evaluate(record)) };
  } catch (err) {
    return { error: message(err) };
  }
}

/** A match condition's truth; the value itself never leaves the thread, however large or deep. */
async function runMatch(expression, record) {
  try {
    const value = await expression.evaluate(record);
    if (isFunction(value)) throw new Error('the expression gives a function, not a value');
    return { value: truthy(value) };
  } catch (err) {
    return { error: message(err) };
  }
}

async function evaluate(request) {
  if (request.define) {
    const rules = request.define.rules.map((rule) => ({
      match: jsonata(rule.match),
      fields: Object.entries(rule.fields).map(([key, source]) => [key, jsonata(source)]),
    }));
    sets.set(request.define.id, rules);
    return {};
  }
  const rules = sets.get(request.set);
  if (!rules) return { error: `rule set ${request.set} is not defined in this thread` };
  const results = [];
  for (const rule of rules) {
    const match = await runMatch(rule.match, request.record);
    if (match.error !== undefined || !match.value) {
      results.push({ matched: false, ...(match.error !== undefined ? { error: match.error } : {}) });
      continue;
    }
    const fields = {};
    for (const [key, expression] of rule.fields) fields[key] = await run(expression, request.record);
    results.push({ matched: true, fields });
  }
  return { results };
}

port.on('message', async (request) => {
  let answer;
  try {
    answer = await evaluate(request);
  } catch (err) {
    answer = { error: message(err) };
  }
  try {
    port.postMessage({ seq: request.seq, ...answer });
  } catch (err) {
    // A value too deeply nested to copy back (this thread's stack is smaller than the main
    // one's): answer with why, rather than not at all and leave the caller to its deadline.
    port.postMessage({
      seq: request.seq,
      // The values the rules gave for this record are at fault, not the thread.
      recordFault: true,
      error:
        err instanceof RangeError
          ? 'a value the rules gave is nested too deeply to be passed on'
          : `the answer cannot be passed on: ${message(err)}`,
    });
  }
  if (signal) {
    Atomics.store(signal, 0, request.seq);
    Atomics.notify(signal, 0);
  }
});
