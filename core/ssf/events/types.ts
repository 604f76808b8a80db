import type { z } from 'zod';
import type { EventSubjectRule } from './common.ts';

export type EventClaims = Record<string, unknown>;

/** One event type of the catalog. */
export interface EventTypeDefinition {
  /** The event type URI, the member name in the SET `events` claim. */
  readonly uri: string;
  /** What users write instead of the URI, e.g. `caep.session-revoked`. */
  readonly shortName: string;
  /** Where the type is defined, e.g. `CAEP 1.0 §3.1`. */
  readonly spec: string;
  readonly description: string;
  /**
   * Schema of the event object without any event-level `subject`. Unknown members pass
   * through: SSF 1.0 §4.2.3 lets transmitters add members and tells receivers to ignore them.
   */
  readonly claims: z.ZodType<EventClaims>;
  readonly eventSubject: EventSubjectRule;
  /** True when the type defines `event_timestamp` (the builder fills it from the occurrence time). */
  readonly timestamp: boolean;
  /** Subject formats the type allows in `sub_id`, when it restricts them. */
  readonly subjectFormats?: readonly string[];
  /** Set for types that must no longer be emitted; says what to use instead. */
  readonly deprecated?: string;
  /**
   * Short name of the type that replaces a deprecated one: a received event of the deprecated
   * type is relayed as this type.
   */
  readonly replacedBy?: string;
  /** Who defines the type when it is not an OpenID standard, e.g. `okta` or a connector id. */
  readonly vendor?: string;
}

/** What a connector passes to registerEventType() for a vendor-specific event type. */
export interface EventTypeRegistration {
  uri: string;
  shortName: string;
  description: string;
  claims: z.ZodType<EventClaims>;
  spec?: string;
  /** Defaults to `none`: SSF 1.0 §3.1.2 forbids event-level subjects in new event types. */
  eventSubject?: EventSubjectRule;
  timestamp?: boolean;
  subjectFormats?: readonly string[];
  vendor?: string;
}
