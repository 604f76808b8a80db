export {
  EventCatalog,
  eventCatalog,
  BUILT_IN_EVENT_TYPES,
  registerEventType,
  resolveEventType,
  getEventType,
  findEventType,
  listEventTypes,
  checkOktaEventSubject,
} from './catalog.ts';
export type { EventCheckResult } from './catalog.ts';
export {
  CAEP_BASE,
  RISC_BASE,
  SSF_BASE,
  OKTA_BASE,
  CREDENTIAL_TYPES,
  caepCommonClaims,
  eventTimestamp,
  initiatingEntity,
  reasonMap,
} from './common.ts';
export type { EventSubjectRule } from './common.ts';
export type { EventClaims, EventTypeDefinition, EventTypeRegistration } from './types.ts';
export { checkEventDraft, validateEventDraft } from './draft.ts';
export type { CheckedEvent, DraftCheckOptions, DraftCheckResult } from './draft.ts';
