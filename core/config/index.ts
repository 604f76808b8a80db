export { loadConfigFile, loadConfigText, loadConfigData, deepFreeze } from './load.ts';
export type { LoadedConfig, LoadResult, LoadOptions, ResolvedInstance } from './load.ts';
export { rootConfigSchema } from './root.ts';
export { fastifyTrustProxy } from './schema.ts';
export type { RootConfig, RootConfigInput } from './root.ts';
export { formatProblems } from './problems.ts';
export type { ConfigProblem } from './problems.ts';
