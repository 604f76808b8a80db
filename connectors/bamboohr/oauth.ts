/**
 * BambooHR OAuth 2.0: access tokens from the refresh token of an authorized app (authorization
 * code grant with the `offline_access` scope), sent as `Authorization: Bearer`.
 *
 * BambooHR may answer a refresh with a new refresh token. The one it replaces may stop working,
 * so the new one is stored durably in the instance's `oauth` checkpoint before its access token
 * is used, and read from there after a restart. The stored token belongs to the configured one
 * (by its SHA-256): configuring another refresh token (the app authorized again) starts over
 * from it. Tokens are registered with the log scrubber and never written to logs.
 */
import { createHash } from 'node:crypto';
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

const storedSchema = z.object({
  /** SHA-256 (hex) of the configured refresh token this one descends from. */
  configured: z.string().min(1),
  refresh_token: z.string().min(1),
});
export type StoredRefreshToken = z.output<typeof storedSchema>;

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

function fingerprint(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
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
  const configured = fingerprint(oauth.refresh_token.reveal());
  /** The refresh token in use, once known; undefined until the first refresh. */
  let refresh: string | undefined;
  let token: { value: string; refreshAt: number } | undefined;
  let pending: Promise<string> | undefined;

  /** The stored refresh token descending from the configured one, else the configured one. */
  async function storedOrConfigured(): Promise<string> {
    const parsed = storedSchema.safeParse(await ctx.checkpoints.get(OAUTH_CHECKPOINT));
    if (parsed.success && parsed.data.configured === configured) {
      registerSecretValue(parsed.data.refresh_token);
      return parsed.data.refresh_token;
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
        await ctx.checkpoints.set({ configured, refresh_token: answer.refresh_token }, OAUTH_CHECKPOINT);
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
