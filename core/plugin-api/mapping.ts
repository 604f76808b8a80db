/**
 * The mapping engine as connectors see it: a zod schema for rule sets to embed in a config
 * schema (it checks expressions, event types and example records when the config loads) and
 * compileRules(), which compiles a rule set once and maps records to events synchronously.
 * A record a rule fails on throws a PermanentError (code SSF_ERR_MAPPING_RULE) whose message
 * names the rule, the field, the expression and what the record holds at the paths it reads.
 */
export {
  compileRules,
  mappingRuleSchema,
  mappingRulesSchema,
  recordHash,
  MAPPING_ERROR_CODE,
  type CompiledRules,
  type MappingRule,
  type MappingRuleInput,
  type RuleProblem,
} from '../mapping/index.ts';
