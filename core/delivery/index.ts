export { DeliveryEngine, lastErrorOf, type DeliveryEngineOptions } from './engine.ts';
export {
  deliveryConfigSchema,
  destinationPolicySchema,
  policyFor,
  type DeliveryConfig,
  type DeliveryConfigInput,
  type DestinationPolicy,
  type DestinationPolicyInput,
  type DestinationPolicyOverride,
  type RetryPolicy,
  type BreakerPolicy,
} from './config.ts';
export { deliveryJti, defaultTxn, orderingKey, dedupeKey } from './jti.ts';
export { backoffCeiling, fullJitter, decideRetry, type RetryDecision } from './backoff.ts';
export { CircuitBreaker, type CircuitState } from './breaker.ts';
export type {
  Destination,
  DestinationInfo,
  SetSigner,
  DeliveryObserver,
  DeliveryNotice,
  DeadLetterReason,
} from './types.ts';
