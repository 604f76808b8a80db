export {
  Pipeline,
  EventValidationError,
  OutboxFullError,
  type AcceptOptions,
  type AcceptResult,
  type PipelineOptions,
  type Problem,
  type ValidateEvent,
  type ValidationResult,
} from './pipeline.ts';
export {
  routesConfigSchema,
  subjectsConfigSchema,
  routeReferenceProblems,
  type RouteConfig,
  type RoutesConfig,
  type RoutesConfigInput,
  type SubjectsConfig,
} from './config.ts';
export { Router, globToRegExp, type RoutableEvent, type RouteTargets } from './routing.ts';
export {
  stableJson,
  stableSubjectKey,
  subjectStrings,
  aliasResolver,
  type SubjectResolver,
} from './subjects.ts';
