/**
 * The mapping engine as connectors see it: a zod schema for rule sets to embed in a config
 * schema (it checks expressions, event types and example records when the config loads) and
 * compileRules(), which compiles a rule set once and maps records to events: mapRecords() on a
 * helper thread for a running connector, within a time budget and without blocking the event
 * loop; map(), which blocks until done, for a definition's pure map() (simulate, fixtures).
 * A record a rule fails on gives a PermanentError (code SSF_ERR_MAPPING_RULE) whose message
 * names the rule, the field, the expression and what the record holds at the paths it reads.
 */
export {
  compileRules,
  EVALUATION_DEADLINE_MS,
  MAPPING_BUDGET_MS,
  mappingRuleSchema,
  mappingRulesSchema,
  recordHash,
  MAPPING_ERROR_CODE,
  type CompiledRules,
  type MappingRule,
  type MappingRuleInput,
  type RecordOutcome,
  type RuleProblem,
} from '../mapping/index.ts';
