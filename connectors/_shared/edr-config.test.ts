import { describe, expect, it } from 'vitest';
import { configSchema as falconConfig } from '../crowdstrike-falcon/config.ts';
import { configSchema as defenderConfig } from '../microsoft-defender/config.ts';
import { configSchema as sentinelOneConfig } from '../sentinelone/config.ts';

function problems(result: { error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) {
  return (result.error?.issues ?? []).map((i) => `${i.path.map(String).join('.')}: ${i.message}`);
}

describe('EDR API addresses in the config', () => {
  it('refuses an address without a scheme with a config error naming the field, instead of throwing', () => {
    const falcon = falconConfig.safeParse({
      base_url: 'api.eu-1.crowdstrike.com',
      client_id: 'a',
      client_secret: 'b',
    });
    expect(problems(falcon)).toEqual(['base_url: Invalid URL']);

    const s1 = sentinelOneConfig.safeParse({ console_url: 'usea1-acme.sentinelone.net', api_token: 'x' });
    expect(problems(s1)).toEqual(['console_url: Invalid URL']);

    const defender = defenderConfig.safeParse({
      tenant_id: 'contoso.onmicrosoft.com',
      client_id: 'app',
      client_secret: 'secret',
      login_url: 'login.microsoftonline.us',
    });
    expect(problems(defender)).toEqual(['login_url: Invalid URL']);
  });

  it('still refuses plain http to another host and takes https', () => {
    expect(
      problems(
        falconConfig.safeParse({
          base_url: 'http://api.crowdstrike.com',
          client_id: 'a',
          client_secret: 'b',
        }),
      ),
    ).toEqual(['base_url: must be an https URL']);
    const ok = falconConfig.safeParse({
      base_url: 'https://api.eu-1.crowdstrike.com/',
      client_id: 'a',
      client_secret: 'b',
    });
    expect(ok.data?.base_url).toBe('https://api.eu-1.crowdstrike.com');
  });
});

describe('EDR subjects and webhook config', () => {
  const base = { mode: 'webhook' as const };

  it('refuses two alias names that differ only in case and map to different addresses, naming both', () => {
    const result = sentinelOneConfig.safeParse({
      ...base,
      webhook: { secret: 'soar-playbook-secret-2026' },
      subjects: {
        user_aliases: { 'CORP\\dlee': 'dana.lee@example.com', 'corp\\DLEE': 'someone.else@example.com' },
      },
    });
    expect(problems(result)).toEqual([
      'subjects.user_aliases.corp\\DLEE: "CORP\\\\dlee" and "corp\\\\DLEE" are the same account name (names are compared case-insensitively) but map to different addresses (dana.lee@example.com, someone.else@example.com); keep one',
    ]);
    // The same address under two spellings overwrites nothing.
    const same = sentinelOneConfig.safeParse({
      ...base,
      webhook: { secret: 'soar-playbook-secret-2026' },
      subjects: {
        user_aliases: { 'CORP\\dlee': 'dana.lee@example.com', 'corp\\DLEE': 'Dana.Lee@example.com' },
      },
    });
    expect(problems(same)).toEqual([]);
  });

  it('refuses a webhook secret a Bearer token cannot carry, and one with whitespace at either end', () => {
    const secretProblems = (webhook: Record<string, unknown>) =>
      problems(falconConfig.safeParse({ ...base, webhook }));
    const bearer =
      'webhook.secret: secret must not contain whitespace: it is presented as `Authorization: Bearer <secret>`, which cannot carry it (inner spaces work only with secret_header)';
    expect(secretProblems({ secret: 'fusion workflow secret 01' })).toEqual([bearer]);
    expect(secretProblems({ secret: 'fusion-workflow-secret-01\n' })).toEqual([bearer]);
    expect(
      secretProblems({ secret: 'fusion workflow secret 01', secret_header: 'X-Webhook-Secret' }),
    ).toEqual([]);
    expect(
      secretProblems({ secret: ' fusion-workflow-secret-01', secret_header: 'X-Webhook-Secret' }),
    ).toEqual([
      'webhook.secret: secret must not begin or end with whitespace: HTTP drops it from header values',
    ]);
    expect(secretProblems({ secret: 'fusion-workflow-secret-01' })).toEqual([]);
  });
});
