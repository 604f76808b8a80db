/**
 * The SSF 1.0 transmitter: discovery, JWKS, stream management, push and poll delivery, receiver
 * authentication. See docs/transmitter.md.
 */
export {
  transmitterConfigSchema,
  quickstartTransmitterConfig,
  QUICKSTART_CLIENT_ID,
  QUICKSTART_TOKEN,
  PUSH_METHOD,
  POLL_METHOD,
  SCOPE_READ,
  SCOPE_MANAGE,
  type TransmitterConfig,
  type TransmitterConfigInput,
} from './config.ts';
export { Transmitter, createTransmitter, type TransmitterDeps } from './transmitter.ts';
export { registerTransmitter } from './routes.ts';
export {
  transmitterUrls,
  transmitterMetadata,
  WELL_KNOWN_SSF,
  type TransmitterUrls,
  type TransmitterMetadata,
} from './metadata.ts';
export { RoutingIndex, subjectStorageKey, type IndexedStream, type RouteOptions } from './routing.ts';
export type { DestinationRegistry } from './destinations.ts';
export type { SetMinter } from './control.ts';
export type { Principal, Scope } from './auth.ts';
export type { StatusView } from './service.ts';
export type { RenderedStream } from './stream-model.ts';
