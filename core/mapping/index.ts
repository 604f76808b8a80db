/** The mapping engine: declarative JSONata rules that turn any record into events. */
export { compileRules, formatProblem, recordHash, ruleSetProblems, MAPPING_ERROR_CODE } from './engine.ts';
export type { CompiledRules, RuleProblem } from './engine.ts';
export { mappingRuleSchema, mappingRulesSchema, ruleExampleSchema } from './rules.ts';
export type { MappingRule, MappingRuleInput } from './rules.ts';
