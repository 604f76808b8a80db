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
