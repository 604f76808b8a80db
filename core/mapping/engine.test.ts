import { describe, expect, it, vi } from 'vitest';
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { compileRules, recordHash, type RuleProblem } from './engine.ts';
import { mappingRulesSchema, type MappingRuleInput } from './rules.ts';

const riskRule: MappingRuleInput = {
  name: 'risky-user',
  match: 'severity in ["high", "critical"]',
  event_type: 'caep.risk-level-change',
  subject: '{"format": "email", "email": $lowercase(user.email)}',
  claims: {
    principal: '"USER"',
    current_level: 'severity = "critical" ? "HIGH" : "MEDIUM"',
    risk_reason: 'title',
  },
  id: 'alert_id',
  occurred_at: 'created_at',
};

function compile(...rules: MappingRuleInput[]) {
  return compileRules(mappingRulesSchema.parse(rules));
}

function problemsOf(fn: () => unknown): RuleProblem[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PermanentError);
    return ((err as PermanentError).detail?.problems ?? []) as RuleProblem[];
  }
  throw new Error('expected the mapping to fail');
}

const alert = {
  alert_id: 'A-1',
  title: 'Impossible travel',
  severity: 'critical',
  created_at: '2026-03-02T09:14:27Z',
  user: { email: 'Dana.Lee@Example.com' },
};

describe('matching', () => {
  it('applies a rule only when its condition is true, and ignores records no rule matches', () => {
    const rules = compile(riskRule);
    expect(rules.map(alert).events).toHaveLength(1);
    expect(rules.map({ ...alert, severity: 'low' })).toEqual({
      events: [],
      ignored: 'no mapping rule matched the record',
    });
  });

  it('uses JSONata truthiness: a present string matches, an empty one or a missing field does not', () => {
    const rules = compile({ ...riskRule, match: 'user.email' });
    expect(rules.map(alert).events).toHaveLength(1);
    expect(rules.map({ ...alert, user: { email: '' } }).events).toHaveLength(0);
    expect(rules.map({ ...alert, user: {} }).events).toHaveLength(0);
  });

  it('a condition or claim that gives a function fails the record, naming it; a function in a list is false', () => {
    // `$exists` without its parentheses: JSONata gives the function itself, an object.
    const bare = compile({ ...riskRule, match: '$exists' });
    expect(problemsOf(() => bare.map(alert)).map((p) => [p.rule, p.field, p.message])).toEqual([
      ['risky-user', 'match', 'the expression gives a function, not a value'],
    ]);
    expect(compile({ ...riskRule, match: '[$exists]' }).map(alert)).toEqual({
      events: [],
      ignored: 'no mapping rule matched the record',
    });
    for (const claim of ['$uppercase', 'function($x){$x}', '{"inner": $uppercase}']) {
      const rules = compile({ ...riskRule, claims: { ...riskRule.claims, risk_reason: claim } });
      expect(
        problemsOf(() => rules.map(alert)).map((p) => [p.field, p.message]),
        claim,
      ).toEqual([['claims.risk_reason', 'the expression gives a function, not a value']]);
    }
  });

  it('gives one event per matching rule, sharing the record id', () => {
    const rules = compile(riskRule, {
      name: 'disable',
      match: 'severity = "critical"',
      event_type: 'risc.account-disabled',
      subject: '{"format": "email", "email": user.email}',
      id: 'alert_id',
    });
    expect(rules.map(alert).events.map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['caep.risk-level-change', 'A-1'],
      ['risc.account-disabled', 'A-1'],
    ]);
    expect(rules.map({ ...alert, severity: 'high' }).events.map((e) => e.type)).toEqual([
      'caep.risk-level-change',
    ]);
  });
});

describe('subject and claim building', () => {
  it('builds the subject, claims, id, time and severity from the record', () => {
    const rules = compile({ ...riskRule, severity: 'severity' });
    expect(rules.map(alert)).toEqual({
      events: [
        {
          type: 'caep.risk-level-change',
          subject: { format: 'email', email: 'dana.lee@example.com' },
          claims: { principal: 'USER', current_level: 'HIGH', risk_reason: 'Impossible travel' },
          sourceRecordId: 'A-1',
          occurredAt: '2026-03-02T09:14:27.000Z',
          severity: 'critical',
        },
      ],
    });
  });

  it('leaves out claims that give nothing, and builds complex subjects and epoch-millisecond times', () => {
    const rules = compile({
      name: 'device',
      match: 'true',
      event_type: 'caep.device-compliance-change',
      subject:
        '{"format": "complex", "user": {"format": "email", "email": owner}, "device": {"format": "opaque", "id": host}}',
      claims: {
        current_status: 'compliant ? "compliant" : "not-compliant"',
        previous_status: 'previous ? "compliant" : "not-compliant"',
        reason_admin: 'note ? {"en": note}',
      },
      occurred_at: 'ts',
    });
    const [event] = rules.map({
      owner: 'a@example.com',
      host: 'mac-1',
      compliant: false,
      previous: true,
      ts: 1767225600000,
    }).events;
    expect(event?.subject).toEqual({
      format: 'complex',
      user: { format: 'email', email: 'a@example.com' },
      device: { format: 'opaque', id: 'mac-1' },
    });
    expect(event?.claims).toEqual({ current_status: 'not-compliant', previous_status: 'compliant' });
    expect(event?.occurredAt).toBe('2026-01-01T00:00:00.000Z');
  });

  it('reads occurred_at as ISO 8601 only, and a time without offset as UTC whatever the host zone', () => {
    vi.stubEnv('TZ', 'America/New_York');
    try {
      const rules = compile({ ...riskRule, occurred_at: 'when' });
      const at = (when: unknown) => rules.map({ ...alert, when }).events[0]?.occurredAt;
      expect(at('2026-03-02T09:14:27')).toBe('2026-03-02T09:14:27.000Z');
      expect(at('2026-03-02 09:14:27.25')).toBe('2026-03-02T09:14:27.250Z');
      expect(at('2026-03-02T09:14:27+01:00')).toBe('2026-03-02T08:14:27.000Z');
      expect(at('2026-03-02')).toBe('2026-03-02T00:00:00.000Z');
      // Date.parse would guess: a RFC 3164 syslog stamp becomes 2001, "1" 2001-01-01, 30 February 2 March.
      for (const when of ['Mar  2 09:14:27', '1', '2026-02-30', 'Tue Mar 03 2026'])
        expect(problemsOf(() => rules.map({ ...alert, when })).map((p) => [p.field, p.message])).toEqual([
          ['occurred_at', `gave ${JSON.stringify(when)}; expected an ISO 8601 date or epoch milliseconds`],
        ]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('defaults the record id to a hash of the record, independent of key order', () => {
    const rules = compile({ ...riskRule, id: undefined });
    const reordered = {
      user: alert.user,
      created_at: alert.created_at,
      severity: 'critical',
      title: alert.title,
      alert_id: 'A-1',
    };
    expect(rules.map(alert).events[0]?.sourceRecordId).toBe(recordHash(alert));
    expect(rules.map(reordered).events[0]?.sourceRecordId).toBe(recordHash(alert));
    expect(recordHash(alert)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('validation failures', () => {
  it('names the rule, the field, the expression and the record path of a missing subject member', () => {
    const problems = problemsOf(() => compile(riskRule).map({ ...alert, user: { name: 'Dana' } }));
    expect(problems).toEqual([
      {
        rule: 'risky-user',
        field: 'subject',
        expression: '{"format": "email", "email": $lowercase(user.email)}',
        record: 'user.email (missing)',
        message: 'subject.email is required by format email (RFC 9493 §3.2.2)',
      },
    ]);
  });

  it('reports claims the catalog refuses with the value the record holds', () => {
    const rule = { ...riskRule, claims: { ...riskRule.claims, current_level: '$uppercase(severity)' } };
    expect(() => compile(rule).map(alert)).toThrow(
      'rule "risky-user", claims.current_level: claims.current_level Invalid option: expected one of "LOW"|"MEDIUM"|"HIGH" ' +
        '(expression: $uppercase(severity); record: severity = "critical")',
    );
  });

  it('reports evaluation errors, bad ids, severities and times, each with its expression', () => {
    const rules = compile({
      ...riskRule,
      match: '$number(score) > 50',
      id: 'ids',
      severity: 'level',
      occurred_at: 'when',
    });
    expect(problemsOf(() => rules.map({ score: 'n/a' }))[0]).toMatchObject({
      field: 'match',
      expression: '$number(score) > 50',
      record: 'score = "n/a"',
    });
    const problems = problemsOf(() =>
      rules.map({ ...alert, score: 90, ids: ['a', 'b'], level: 'urgent', when: 'soon' }),
    );
    expect(problems.map((p) => [p.field, p.message])).toEqual([
      ['id', 'gave ["a","b"]; expected a non-empty string or a number'],
      ['severity', 'gave "urgent"; expected one of low, medium, high, critical'],
      ['occurred_at', 'gave "soon"; expected an ISO 8601 date or epoch milliseconds'],
    ]);
  });

  it('refuses two rules producing the same event for the same record id', () => {
    const rules = compile(riskRule, { ...riskRule, name: 'copy' });
    expect(() => rules.map(alert)).toThrow(
      'rule "risky-user" already produced caep.risk-level-change with id "A-1"',
    );
  });

  it('bounds evaluation time: a runaway expression fails the record, and the next record still maps', () => {
    const slow = compile({ ...riskRule, name: 'slow', match: '$count([1..5000000].($ * 2)) > 0' });
    expect(() => slow.map(alert)).toThrow(/could not be evaluated: evaluation took longer than/);
    expect(compile(riskRule).map(alert).events).toHaveLength(1);
  });
});

/** The longest the event loop went without running a 10 ms timer while `work` ran. */
async function longestStall(work: Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 10);
  try {
    await work;
  } finally {
    clearInterval(ticker);
  }
  return Math.max(longest, performance.now() - last);
}

describe('mapping records off the event loop', () => {
  // Backtracking without end on a title that almost matches.
  const slowRule = { ...riskRule, name: 'slow', match: '$contains(title, /^(\\w+\\s?)*$/)' };
  const slowAlert = { ...alert, title: `${'word '.repeat(12)}${'a'.repeat(30)}!` };

  it('maps records in order, each to its events, its reason to be ignored or its failure', async () => {
    const rules = compile(riskRule);
    const outcomes = await rules.mapRecords([alert, { ...alert, severity: 'low' }, { ...alert, user: {} }]);
    expect(outcomes.map((o) => (o.ok ? (o.result.ignored ?? o.result.events.length) : 'failed'))).toEqual([
      1,
      'no mapping rule matched the record',
      'failed',
    ]);
    const failed = outcomes[2];
    expect(failed?.ok === false && failed.error).toBeInstanceOf(PermanentError);
    expect(failed?.ok === false && failed.error.message).toContain('rule "risky-user", subject:');
    rules.close();
  });

  it('keeps the event loop running while a runaway rule is cut off, stops there, and maps on afterwards', async () => {
    const rules = compile(slowRule);
    const mapping = rules.mapRecords([alert, slowAlert, alert]);
    const started = performance.now();
    expect(await longestStall(mapping)).toBeLessThan(500);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_900);
    const outcomes = await mapping;
    // The first record maps, the runaway one fails, the one after it is not taken up.
    expect(outcomes).toHaveLength(2);
    expect(outcomes[0]?.ok && outcomes[0].result.events).toHaveLength(1);
    expect(outcomes[1]?.ok === false && outcomes[1].error.message).toBe(
      'mapping rules could not be evaluated: evaluation took longer than 2000 ms',
    );
    // The runaway thread was replaced: the next record is not stuck behind it.
    const next = performance.now();
    expect((await rules.mapRecords([{ ...slowAlert, title: 'fine' }]))[0]?.ok).toBe(true);
    expect(performance.now() - next).toBeLessThan(1_500);
    rules.close();
  }, 15_000);

  it('gives the records mapped together one time budget', async () => {
    const rules = compile(slowRule);
    const started = performance.now();
    const outcomes = await rules.mapRecords([slowAlert, alert], { budgetMs: 300 });
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]?.ok === false && outcomes[0].error.message).toBe(
      'mapping rules could not be evaluated: it ran past the 300 ms the records mapped with it may take together',
    );
    rules.close();
  }, 15_000);
});

describe('what the evaluator runs out of', () => {
  it("names the real cause of a failure when less than a record's deadline of the budget is left", async () => {
    const rules = compile(riskRule);
    const deep = JSON.parse(`${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`) as unknown;
    const outcomes = await rules.mapRecords([alert, deep], { budgetMs: 1_500 });
    expect(outcomes).toHaveLength(2);
    expect(outcomes[1]?.ok === false && outcomes[1].error.message).toBe(
      'mapping rules could not be evaluated: the record is nested too deeply to be evaluated',
    );
    rules.close();
  });

  it('rejects, refusing no record, when the helper thread is ended under a record; the next call maps', async () => {
    const slow = compile({ ...riskRule, name: 'slow', match: '$contains(title, /^(\\w+\\s?)*$/)' });
    // The thread is started and holds the rules: the runaway record is taken up at once.
    expect((await slow.mapRecords([{ ...alert, title: 'fine' }]))[0]?.ok).toBe(true);
    const mapping = slow.mapRecords([alert, { ...alert, title: `${'word '.repeat(12)}${'a'.repeat(30)}!` }]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    slow.close();
    const err = await mapping.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({
      code: 'SSF_ERR_MAPPING_UNAVAILABLE',
      retryAfterMs: 5_000,
      message:
        'mapping rules could not be evaluated, through no fault of the records: the JSONata evaluator thread was ended; try again',
    });
    expect((await slow.mapRecords([{ ...alert, title: 'fine' }]))[0]?.ok).toBe(true);
    slow.close();
  }, 15_000);

  it('ends a rule building a huge value with a clear error, and the next record maps', async () => {
    const bomb = compile({ ...riskRule, name: 'bomb', match: 'explode and $count([1..10000000].[$]) > 0' });
    const [outcome] = await bomb.mapRecords([{ ...alert, explode: true }, alert]);
    expect(outcome?.ok === false && outcome.error.message).toMatch(
      /^mapping rules could not be evaluated: (evaluation took longer than 2000 ms|the rules ran out of memory on the record)/,
    );
    expect((await bomb.mapRecords([alert]))[0]?.ok).toBe(true);
    bomb.close();
  }, 30_000);

  it('refuses a field whose value is longer than a megabyte of JSON, naming it', async () => {
    const rules = compile({ ...riskRule, claims: { ...riskRule.claims, risk_reason: '$pad("", 1100000)' } });
    const [outcome] = await rules.mapRecords([alert]);
    expect(outcome?.ok === false && outcome.error.detail?.problems).toEqual([
      expect.objectContaining({
        field: 'claims.risk_reason',
        message: 'the expression gives a value longer than 1048576 characters as JSON',
      }),
    ]);
    rules.close();
  });
});

describe('records nested deeply', () => {
  /** The alert with `extra` nested `depth` objects deep, as JSON.parse gives it from a request body. */
  const nested = (depth: number): unknown =>
    JSON.parse(`{"alert":${JSON.stringify(alert)},"extra":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`);
  const wrapped = {
    ...riskRule,
    match: 'alert.severity = "critical"',
    subject: '{"format": "email", "email": $lowercase(alert.user.email)}',
    claims: { principal: '"USER"', current_level: '"HIGH"' },
    id: undefined,
    occurred_at: undefined,
  };

  it('refuses a record too deep to reach the helper thread, and the next record maps at once', async () => {
    const rules = compile(wrapped);
    const outcomes = await rules.mapRecords([nested(50_000)]);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]?.ok === false && outcomes[0].error.message).toBe(
      'mapping rules could not be evaluated: the record is nested too deeply to be evaluated',
    );
    // The thread never took the record up: it is free for the next one, not "busy" until a deadline.
    const next = await rules.mapRecords([{ alert, extra: 1 }]);
    expect(next[0]?.ok && next[0].result.events).toHaveLength(1);
    rules.close();
  });

  it('refuses a claim whose value nests too deeply at once, naming the claim, and matches on such a value', async () => {
    const rules = compile({
      ...wrapped,
      match: 'extra',
      claims: { ...wrapped.claims, risk_reason: 'extra' },
      id: '"A-1"',
    });
    const started = performance.now();
    const outcomes = await rules.mapRecords([nested(3_000)]);
    // Not a 2 s deadline spent waiting for an answer the main thread could never take.
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(outcomes[0]?.ok === false && outcomes[0].error.message).toMatch(
      /^rule "risky-user", claims\.risk_reason: the expression gives a value nested more than 100 levels deep/,
    );
    rules.close();
  });

  it('refuses claims nested deeper than any event may be (32 levels), as the pipeline would', async () => {
    const rules = compile({ ...wrapped, claims: { ...wrapped.claims, details: 'extra' }, id: '"A-1"' });
    const [deep] = await rules.mapRecords([nested(40)]);
    expect(deep?.ok === false && deep.error.message).toMatch(
      /^rule "risky-user", claims: nests more than 32 levels deep/,
    );
    const [shallow] = await rules.mapRecords([nested(20)]);
    expect(shallow?.ok && shallow.result.events).toHaveLength(1);
    rules.close();
  });

  it('refuses, naming the id, a record too deep to hash for its default id instead of throwing', async () => {
    const rules = compile(wrapped);
    const outcomes = await rules.mapRecords([nested(3_000)]);
    expect(outcomes[0]?.ok === false && outcomes[0].error.message).toBe(
      'rule "risky-user", id: the record is nested too deeply to derive an id from it; give the rule an id expression',
    );
    // With an id expression the same record maps.
    const withId = compile({ ...wrapped, id: '"A-1"' });
    const mapped = await withId.mapRecords([nested(3_000)]);
    expect(mapped[0]?.ok && mapped[0].result.events[0]?.sourceRecordId).toBe('A-1');
    rules.close();
    withId.close();
  });
});

describe('what JSONata and the stores refuse', () => {
  it('reports a JSONata runtime error with its message, code and position, not [object Object]', async () => {
    const rules = compile({ ...riskRule, match: 'score > 5' });
    const [problem] = problemsOf(() => rules.map({ ...alert, score: 'high' }));
    expect(problem).toMatchObject({ rule: 'risky-user', field: 'match', record: 'score = "high"' });
    expect(problem?.message).toBe(
      'The values "high" and 5 either side of operator ">" must be of the same data type (JSONata T2009, at character 7)',
    );
    // The same on the helper thread, and for a field's expression.
    const claim = compile({ ...riskRule, claims: { ...riskRule.claims, risk_reason: 'title + 1' } });
    const [outcome] = await claim.mapRecords([alert]);
    expect(outcome?.ok === false && outcome.error.message).toMatch(
      /^rule "risky-user", claims\.risk_reason: The left side of the "\+" operator must evaluate to a number \(JSONata T2001, at character \d+\)/,
    );
    claim.close();
  });

  it('refuses, as a problem of its rule and record, text no store keeps in the id, subject or a claim', async () => {
    const rules = compile({
      ...riskRule,
      subject: '{"format": "iss_sub", "iss": "https://idp.example.com", "sub": user.sub}',
    });
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ title: 'Impossible\u0000travel' }, 'claims.risk_reason', 'claims.risk_reason'],
      [{ user: { sub: 'dana\ud800' } }, 'subject', 'subject.sub'],
      [{ alert_id: 'A-\udc00' }, 'id', 'id'],
    ];
    const user = { user: { sub: 'dana' } };
    for (const [change, field, path] of cases) {
      const problems = problemsOf(() => rules.map({ ...alert, ...user, ...change }));
      expect(problems.map((p) => [p.rule, p.field, p.message])).toEqual([
        ['risky-user', field, `${path} holds U+0000 or half of a surrogate pair, which no store keeps`],
      ]);
    }
    // On the helper thread: only that record is refused, the others map.
    const fine = { ...alert, ...user };
    const outcomes = await rules.mapRecords([fine, { ...fine, title: 'a\u0000b' }, fine]);
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    expect(outcomes[1]?.ok === false && outcomes[1].error.detail?.problems).toEqual([
      {
        rule: 'risky-user',
        field: 'claims.risk_reason',
        expression: 'title',
        record: 'title = "a\\u0000b"',
        message: 'claims.risk_reason holds U+0000 or half of a surrogate pair, which no store keeps',
      },
    ]);
    // A pair of surrogates is a character like any other.
    expect(rules.map({ ...fine, title: 'Travel \ud83d\ude80' }).events[0]?.claims?.risk_reason).toBe(
      'Travel \ud83d\ude80',
    );
    rules.close();
  });

  it('takes a JSON null in an optional field as nothing, and keeps required fields strict', () => {
    const rules = compile({ ...riskRule, severity: 'level', claims: { ...riskRule.claims, extra: 'note' } });
    const rule = riskRule.name;
    const [event] = rules.map({ ...alert, created_at: null, level: null, note: null }).events;
    expect(event).toEqual({
      type: 'caep.risk-level-change',
      subject: { format: 'email', email: 'dana.lee@example.com' },
      claims: { principal: 'USER', current_level: 'HIGH', risk_reason: 'Impossible travel' },
      sourceRecordId: 'A-1',
    });
    expect(
      problemsOf(() => rules.map({ ...alert, alert_id: null })).map((p) => [p.rule, p.field, p.message]),
    ).toEqual([[rule, 'id', 'gave null; expected a non-empty string or a number']]);
    const subject = compile({ ...riskRule, subject: 'user' });
    expect(problemsOf(() => subject.map({ ...alert, user: null })).map((p) => [p.field, p.message])).toEqual([
      ['subject', 'gave null; expected an object such as {"format": "email", "email": …}'],
    ]);
  });
});

describe('rule-set schema', () => {
  it('reports syntax errors, unknown event types and duplicate names with config paths', () => {
    const result = mappingRulesSchema.safeParse([
      { ...riskRule, claims: { risk_reason: 'title &' } },
      { ...riskRule, event_type: 'caep.risk-level' },
    ]);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['0.claims.risk_reason', 'invalid JSONata: Unexpected end of expression (at character 7)'],
      ['1.name', 'another rule is already named "risky-user"'],
      ['1.event_type', 'unknown event type "caep.risk-level" (see: ssf-bridge events list)'],
    ]);
  });

  it('refuses a deprecated event type when the config loads, naming what to use instead', () => {
    const result = mappingRulesSchema.safeParse([{ ...riskRule, event_type: 'risc.sessions-revoked' }]);
    expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['0.event_type', 'RISC 1.0 §2.11 deprecates it; new implementations MUST use caep.session-revoked'],
    ]);
  });

  it('checks example records: matching ones must give valid events, others must not match', () => {
    const result = mappingRulesSchema.safeParse([
      {
        ...riskRule,
        examples: [
          { record: alert },
          { record: { ...alert, severity: 'low' }, matches: false },
          { record: { ...alert, severity: 'low' } },
          { record: alert, matches: false },
          { record: { ...alert, user: {} } },
        ],
      },
    ]);
    expect(result.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['0.examples.2', 'rule "risky-user" does not match this example record'],
      ['0.examples.3', 'rule "risky-user" matches this example record, which it must not'],
      ['0.examples.4', expect.stringContaining('rule "risky-user", subject: subject.email is required')],
    ]);
  });
});
