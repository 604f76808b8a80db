export { keysConfigSchema, defaultKeysConfig } from './config.ts';
export type { KeysConfig, KeysConfigInput } from './config.ts';
export { KeyStore, keyFilePath } from './store.ts';
export type { KeyInfo, KeyStatus, KeyStoreOptions, SigningKey } from './store.ts';
export {
  createSigner,
  generateKeyMaterial,
  keyMaterialFromText,
  publicJwkOf,
  thumbprintKid,
} from './material.ts';
export type { KeyMaterial, PublicJwk, SignFunction } from './material.ts';
