/**
 * The rule language operators write in config: each rule names an event type and gives JSONata
 * expressions over the incoming record for its match condition, subject, claims and ids.
 * The schema checks expressions, event types and the rules' example records at config load,
 * so `ssf-bridge validate` reports a broken rule before the bridge runs.
 */
import { z } from 'zod';
import { ruleSetProblems } from './engine.ts';

const expression = (description: string) => z.string().min(1).max(10_000).meta({ description });

export const ruleExampleSchema = z.strictObject({
  record: z.unknown().meta({ description: 'A record as the source sends it.' }),
  matches: z.boolean().default(true).meta({
    description:
      'Whether this rule must match the record (and then produce a valid event) or must not match it.',
  }),
});

export const mappingRuleSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(100)
    .meta({ description: 'Unique name of the rule, shown in errors and logs.' }),
  match: expression(
    'JSONata condition over the record; the rule applies when it is true (JSONata $boolean semantics).',
  ),
  event_type: z.string().min(1).meta({
    description: 'Event type the rule produces: a short name such as caep.session-revoked, or a URI.',
  }),
  subject: expression(
    'JSONata expression giving the subject identifier, e.g. {"format": "email", "email": user.email}.',
  ),
  claims: z
    .record(
      z.string().min(1),
      expression('JSONata expression giving the claim value; a claim that gives nothing is left out.'),
    )
    .default({})
    .meta({ description: 'Event claims by name, each a JSONata expression over the record.' }),
  id: expression(
    "JSONata expression giving the source's id of the record (de-duplication, SET jti). Default: a hash of the record.",
  ).optional(),
  severity: expression(
    'JSONata expression giving low, medium, high or critical (used by route filters).',
  ).optional(),
  occurred_at: expression(
    'JSONata expression giving when it happened: an ISO 8601 string or epoch milliseconds. Default: when the bridge accepted it.',
  ).optional(),
  examples: z
    .array(ruleExampleSchema)
    .optional()
    .meta({ description: 'Example records checked against the rule whenever the config is loaded.' }),
});

/** A rule set: every rule that matches a record produces one event. */
export const mappingRulesSchema = z
  .array(mappingRuleSchema)
  .min(1)
  .superRefine((rules, ctx) => {
    for (const problem of ruleSetProblems(rules))
      ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
  })
  .meta({ description: 'Mapping rules (JSONata) turning each incoming record into events.' });

export type MappingRule = z.output<typeof mappingRuleSchema>;
export type MappingRuleInput = z.input<typeof mappingRuleSchema>;
