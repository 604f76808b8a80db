/** The mapping engine: declarative JSONata rules that turn any record into events. */
export {
  compileRules,
  formatProblem,
  recordHash,
  ruleSetProblems,
  MAPPING_BUDGET_MS,
  MAPPING_ERROR_CODE,
  MAPPING_UNAVAILABLE_CODE,
} from './engine.ts';
export type { CompiledRules, RecordOutcome, RuleProblem } from './engine.ts';
export { EVALUATION_DEADLINE_MS } from './evaluator.ts';
export { mappingRuleSchema, mappingRulesSchema, ruleExampleSchema } from './rules.ts';
export type { MappingRule, MappingRuleInput } from './rules.ts';
