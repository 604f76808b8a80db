export { keysConfigSchema, defaultKeysConfig, JWKS_MAX_AGE_SECONDS } from './config.ts';
export type { KeysConfig, KeysConfigInput } from './config.ts';
export { KeyStore, keyFilePath } from './store.ts';
export type { KeyInfo, KeyStatus, KeyStoreOptions, SigningKey, SigningSchedule } from './store.ts';
export {
  createSigner,
  generateKeyMaterial,
  keyMaterialFromText,
  publicJwkOf,
  thumbprintKid,
} from './material.ts';
export type { KeyMaterial, PublicJwk, SignFunction } from './material.ts';
