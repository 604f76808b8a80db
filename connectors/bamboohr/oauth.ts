/**
 * BambooHR OAuth 2.0: access tokens from the refresh token of an authorized app (authorization
 * code grant with the `offline_access` scope), sent as `Authorization: Bearer`.
 *
 * BambooHR may answer a refresh with a new refresh token. The one it replaces may stop working,
 * so the new one is stored durably in the instance's `oauth` checkpoint before its access token
 * is used, and read from there after a restart (or by another instance of the same app sharing
 * the store). Tokens are registered with the log scrubber and never written to logs.
 *
 * The stored token is sealed, so that reading the database (a backup, a read-only user) does
 * not give access to BambooHR: AES-256-GCM under a key derived with HKDF-SHA256 from the
 * configured client secret, which lives with the config and its secrets, never in the store.
 * The row also names the configured refresh token it descends from, by an HMAC-SHA256 under
 * another key derived from the client secret (a bare hash would let a guess be checked). A row
 * of another configured refresh token (the app authorized again) is left for it; one that does
 * not open (the client secret changed, the row was altered) is ignored with a warning, and the
 * configured refresh token is used.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import {
  PermanentError,
  RetryableError,
  registerSecretValue,
  z,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import type { BambooHrConfig, BambooHrOAuth } from './config.ts';

/** Name of the checkpoint that holds the current refresh token. */
export const OAUTH_CHECKPOINT = 'oauth';

/** The sealed refresh token, as stored (version 1). Binary fields are base64url. */
const sealedSchema = z.object({
  v: z.literal(1),
  /** HMAC-SHA256 (hex) of the configured refresh token this one descends from. */
  configured: z.string().min(1),
  iv: z.string().min(1),
  ciphertext: z.string().min(1),
  tag: z.string().min(1),
});
export type StoredRefreshToken = z.output<typeof sealedSchema>;

/** HKDF info strings: each key is for one purpose only. */
export const SEAL_INFO = 'ssf-bridge bamboohr oauth refresh-token seal v1';
export const FINGERPRINT_INFO = 'ssf-bridge bamboohr oauth refresh-token fingerprint v1';

export interface RefreshTokenSeal {
  /** HMAC of a refresh token: names the configured one in the stored row. */
  fingerprint(refreshToken: string): string;
  seal(refreshToken: string, configured: string): StoredRefreshToken;
  /** The refresh token in a row, or undefined when it does not open under this key. */
  open(stored: StoredRefreshToken): string | undefined;
}

/**
 * Keys derived from the client secret (HKDF-SHA256, the client id as salt). Instances of the
 * same app share them, so each can read what another rotated in.
 */
export function refreshTokenSeal(
  oauth: Pick<BambooHrOAuth, 'client_id' | 'client_secret'>,
): RefreshTokenSeal {
  const ikm = Buffer.from(oauth.client_secret.reveal(), 'utf8');
  const salt = Buffer.from(oauth.client_id, 'utf8');
  const sealKey = Buffer.from(hkdfSync('sha256', ikm, salt, SEAL_INFO, 32));
  const macKey = Buffer.from(hkdfSync('sha256', ikm, salt, FINGERPRINT_INFO, 32));
  // Authenticated with the row's version and fingerprint: a row moved under another is refused.
  const aad = (configured: string) => Buffer.from(`v1:${configured}`, 'utf8');
  return {
    fingerprint: (refreshToken) => createHmac('sha256', macKey).update(refreshToken, 'utf8').digest('hex'),
    seal(refreshToken, configured) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', sealKey, iv);
      cipher.setAAD(aad(configured));
      const ciphertext = Buffer.concat([cipher.update(refreshToken, 'utf8'), cipher.final()]);
      return {
        v: 1,
        configured,
        iv: iv.toString('base64url'),
        ciphertext: ciphertext.toString('base64url'),
        tag: cipher.getAuthTag().toString('base64url'),
      };
    },
    open(stored) {
      try {
        const iv = Buffer.from(stored.iv, 'base64url');
        const tag = Buffer.from(stored.tag, 'base64url');
        if (iv.length !== 12 || tag.length !== 16) return undefined;
        const decipher = createDecipheriv('aes-256-gcm', sealKey, iv, { authTagLength: 16 });
        decipher.setAAD(aad(stored.configured));
        decipher.setAuthTag(tag);
        const plain = Buffer.concat([
          decipher.update(Buffer.from(stored.ciphertext, 'base64url')),
          decipher.final(),
        ]).toString('utf8');
        return plain.length > 0 ? plain : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

const tokenAnswer = z.looseObject({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1).optional(),
  expires_in: z.union([z.number(), z.string()]).optional(),
  token_type: z.string().optional(),
});

const errorAnswer = z.looseObject({ error: z.string().optional(), error_description: z.string().optional() });

export interface BambooOAuth {
  /** `Authorization: Bearer …` with a current access token (refreshed when due). */
  headers(): Promise<Record<string, string>>;
  /**
   * Forgets the access token the API refused (answered 401), so the next call refreshes it; a
   * token another call already replaced is kept.
   */
  invalidate(refused: Record<string, string>): void;
}

export function tokenUrl(config: BambooHrConfig, oauth: BambooHrOAuth): string {
  return oauth.token_url ?? `https://${config.company_domain}.bamboohr.com/token.php?request=token`;
}

export function createBambooOAuth(
  ctx: InboundContext<unknown>,
  config: BambooHrConfig,
  oauth: BambooHrOAuth,
): BambooOAuth {
  const http = ctx.http.create({
    timeoutMs: config.request_timeout,
    headers: { accept: 'application/json' },
  });
  const url = tokenUrl(config, oauth);
  const sealing = refreshTokenSeal(oauth);
  const configured = sealing.fingerprint(oauth.refresh_token.reveal());
  /** The last stored row that did not open, so that one is warned about once. */
  let unopened: string | undefined;
  /** The refresh token in use, once known; undefined until the first refresh. */
  let refresh: string | undefined;
  let token: { value: string; refreshAt: number } | undefined;
  let pending: Promise<string> | undefined;

  /** Stores a rotated refresh token, sealed. */
  async function store(refreshToken: string): Promise<void> {
    await ctx.checkpoints.set(sealing.seal(refreshToken, configured), OAUTH_CHECKPOINT);
  }

  /** The stored refresh token descending from the configured one, else the configured one. */
  async function storedOrConfigured(): Promise<string> {
    const row = await ctx.checkpoints.get(OAUTH_CHECKPOINT);
    const sealed = sealedSchema.safeParse(row);
    if (sealed.success) {
      const opened = sealing.open(sealed.data);
      if (opened !== undefined && sealed.data.configured === configured) {
        registerSecretValue(opened);
        return opened;
      }
      if (unopened !== sealed.data.ciphertext) {
        unopened = sealed.data.ciphertext;
        ctx.logger.warn(
          {},
          'the stored BambooHR refresh token does not open with this configuration (oauth.refresh_token or oauth.client_secret was changed, or the stored row was altered); the configured refresh token is used',
        );
      }
      return oauth.refresh_token.reveal();
    }
    return oauth.refresh_token.reveal();
  }

  /** One refresh request; shared by every caller, so it runs under the instance's signal. */
  async function exchange(refreshToken: string) {
    const res = await http.post(
      url,
      {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: oauth.client_id,
        client_secret: oauth.client_secret.reveal(),
        ...(oauth.redirect_uri ? { redirect_uri: oauth.redirect_uri } : {}),
      },
      { responseType: 'text', acceptStatuses: [400, 401], signal: ctx.signal },
    );
    return res;
  }

  function oauthError(body: string): { error: string; description?: string | undefined } {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return { error: 'unknown' };
    }
    const parsed = errorAnswer.safeParse(json);
    return parsed.success
      ? { error: parsed.data.error ?? 'unknown', description: parsed.data.error_description }
      : { error: 'unknown' };
  }

  function refused(status: number, body: string): PermanentError {
    const { error, description } = oauthError(body);
    const said = description ? `: ${description}` : '';
    if (error === 'invalid_grant') {
      return new PermanentError(
        `BambooHR refused the refresh token (invalid_grant${said}): it was revoked, has expired or was already used. Authorize the app again and set oauth.refresh_token to the new refresh token`,
        { code: 'SSF_ERR_BAMBOOHR_OAUTH', authFailure: true, detail: { status, error } },
      );
    }
    if (error === 'invalid_client' || status === 401) {
      return new PermanentError(
        `BambooHR refused the OAuth client (${error}${said}): check oauth.client_id and oauth.client_secret`,
        { code: 'SSF_ERR_BAMBOOHR_OAUTH', authFailure: true, detail: { status, error } },
      );
    }
    return new PermanentError(`the BambooHR token endpoint answered ${status} (${error}${said})`, {
      code: 'SSF_ERR_BAMBOOHR_OAUTH',
      authFailure: true,
      detail: { status, error },
    });
  }

  async function fetchToken(): Promise<string> {
    let used = refresh ?? (await storedOrConfigured());
    let res = await exchange(used);
    if (
      (res.status === 400 || res.status === 401) &&
      oauthError(String(res.data)).error === 'invalid_grant'
    ) {
      // Another instance sharing the store may have rotated the token meanwhile: take its one.
      const stored = await storedOrConfigured();
      if (stored !== used) {
        used = stored;
        res = await exchange(used);
      }
    }
    if (res.status === 400 || res.status === 401) throw refused(res.status, String(res.data ?? ''));
    let json: unknown;
    try {
      json = JSON.parse(String(res.data ?? ''));
    } catch {
      json = undefined;
    }
    const parsed = tokenAnswer.safeParse(json);
    if (!parsed.success) {
      throw new PermanentError('the BambooHR token endpoint answered without an access_token', {
        code: 'SSF_ERR_BAMBOOHR_OAUTH',
        authFailure: true,
      });
    }
    const answer = parsed.data;
    if (answer.token_type !== undefined && answer.token_type.toLowerCase() !== 'bearer') {
      throw new PermanentError(
        `the BambooHR token endpoint answered a ${answer.token_type} token; only Bearer tokens are supported`,
        { code: 'SSF_ERR_BAMBOOHR_OAUTH', authFailure: true },
      );
    }
    const lifetimeS = Number(answer.expires_in ?? 3600);
    const lifetime = Number.isFinite(lifetimeS) && lifetimeS > 0 ? lifetimeS * 1000 : 3_600_000;
    registerSecretValue(answer.access_token, { lifetimeMs: lifetime });
    if (answer.refresh_token !== undefined && answer.refresh_token !== used) {
      registerSecretValue(answer.refresh_token);
      // Kept in memory first: should storing it fail, this process goes on with it.
      refresh = answer.refresh_token;
      try {
        await store(answer.refresh_token);
      } catch (err) {
        throw new RetryableError(
          `BambooHR rotated the refresh token, and the new one could not be stored: ${(err as Error).message}`,
          { code: 'SSF_ERR_BAMBOOHR_OAUTH_STATE', cause: err },
        );
      }
      ctx.logger.info({}, 'BambooHR rotated the refresh token; the new one is stored');
    } else {
      refresh = used;
    }
    token = {
      value: answer.access_token,
      refreshAt: Date.now() + lifetime - Math.min(60_000, lifetime / 10),
    };
    return token.value;
  }

  return {
    async headers() {
      if (!token || Date.now() >= token.refreshAt) {
        pending ??= fetchToken().finally(() => (pending = undefined));
        await pending;
      }
      return { authorization: `Bearer ${token!.value}` };
    },
    invalidate(refused) {
      if (token && refused['authorization'] === `Bearer ${token.value}`) token = undefined;
    },
  };
}
