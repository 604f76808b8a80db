/**
 * The SSF core: event catalog, subject identifiers, the SET codec (build, sign, verify), signing
 * keys and JWKS, and target profiles. The only module of ssf-bridge that uses jose.
 */
export * from './errors.ts';
export * from './algorithms.ts';
export {
  validateSubject,
  parseSubject,
  normaliseSubject,
  isSubjectIdentifier,
  subjectsMatch,
  subjectKeys,
  subjectKey,
  registerSubjectFormat,
  listSubjectFormats,
  COMPLEX_MEMBER_NAMES,
} from './subjects.ts';
export type {
  SubjectIdentifier,
  SubjectCheckOptions,
  SubjectCheckResult,
  StringSubjectFormat,
} from './subjects.ts';
export * from './events/index.ts';
export * from './set/index.ts';
export * from './keys/index.ts';
export {
  DEFAULT_PROFILE,
  PROFILE_NAMES,
  applyProfile,
  getProfile,
  listProfiles,
  parseProfileOptions,
  ssfProfile,
  oktaItpProfile,
  googleWorkspaceProfile,
  legacySseProfile,
  OKTA_ACCEPTED_EVENT_TYPES,
  GOOGLE_WORKSPACE_AUDIENCE,
  LEGACY_SSE_ACCEPTED_EVENT_TYPES,
} from './profiles/index.ts';
export type {
  ProfileInput,
  ShapedEvent,
  TargetProfile,
  SsfOptions,
  OktaItpOptions,
} from './profiles/index.ts';
