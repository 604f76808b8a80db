/**
 * The public plugin API: the only core module a connector may import. Everything a connector
 * needs — the definition helper, types, error classes, config helpers and zod — comes from here,
 * so connectors share one zod instance with the core.
 */
export { z } from 'zod';
export { defineConnector, isConnectorDefinition } from './define.ts';
export { manifestSchema, stabilitySchema, CONNECTOR_ID_PATTERN } from './manifest.ts';
export type { ConnectorManifest, ConnectorManifestInput } from './manifest.ts';
export {
  BridgeError,
  RetryableError,
  PermanentError,
  NotConnectedError,
  ConfigError,
  isBridgeError,
  classOf,
  CHECKPOINT_CONFLICT,
  checkpointConflict,
  retryOnCheckpointConflict,
} from './errors.ts';
export type { ErrorClass, BridgeErrorOptions } from './errors.ts';
export { Secret, secret, isSecret, registerSecretValue } from './secret.ts';
export { assertionLifetimeMs } from '../http/assertion.ts';
export { callbackLogger, type LogLevelName } from './logger.ts';
export { duration, formatDuration, parseDuration, type DurationBounds } from './duration.ts';
export { MAX_EVENT_NESTING, nestsDeeperThan } from './json-depth.ts';
export { isEmailAddress, usableEmail } from '../ssf/subjects.ts';
export { parseRateLimitReset, parseRetryAfter } from '../http/retry-after.ts';
export { pathSegment } from './path-segment.ts';
export { sameOriginLink, type SameOriginLinkOptions } from './same-origin-link.ts';
export { checkProfileOptions, profileFields } from './profiles.ts';
export { matchableIdentifier } from '../ssf/profiles/types.ts';
export { caepRiskAsOkta } from '../ssf/profiles/okta-itp.ts';
export { classifyPushResponse, parsePushError, type PushResponse, type PushClassifyOptions } from './push.ts';
export type * from './types.ts';
export * from './mapping.ts';
export * from './ssf-receiver.ts';
