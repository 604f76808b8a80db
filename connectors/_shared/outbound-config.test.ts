import { describe, expect, it } from 'vitest';
import { microsoftGraph } from '../microsoft-graph/index.ts';
import { oktaItp } from '../okta-itp/index.ts';
import { oktaUniversalLogout } from '../okta-universal-logout/index.ts';
import { scimDeprovision } from '../scim-deprovision/index.ts';
import { slack } from '../slack/index.ts';
import { ssfPush } from '../ssf-push/index.ts';
import { webhook } from '../webhook/index.ts';
import { baseUrl, endpointUrl } from './outbound-config.ts';
import type { z } from '../../core/plugin-api/index.ts';

describe('outbound config URLs', () => {
  it('a base URL loses the trailing slashes of its path', () => {
    const base = baseUrl('base');
    expect(base.parse('https://app.example.com/scim/v2/')).toBe('https://app.example.com/scim/v2');
    expect(base.parse('https://example.okta.com//')).toBe('https://example.okta.com');
  });

  it('a base URL with a query or fragment is refused: the paths joined to it would land inside the query', () => {
    const base = baseUrl('base');
    for (const url of [
      'https://api.example.com/v1/?tenant=a/',
      'https://api.example.com/v1?tenant=a',
      'https://api.example.com/v1#frag/',
    ]) {
      const parsed = base.safeParse(url);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.message).toContain('must not have a query or fragment');
    }
    const configs: Array<[{ configSchema: z.ZodType }, Record<string, unknown>, string]> = [
      [scimDeprovision, { token: 't', base_url: 'https://app.example.com/scim/v2?tenant=a' }, 'base_url'],
      [
        oktaUniversalLogout,
        { org_url: 'https://example.okta.com/?x=1', client_id: 'c', private_key: 'k' },
        'org_url',
      ],
      [oktaItp, { org_url: 'https://example.okta.com?x=1' }, 'org_url'],
      [slack, { token: 'xoxp-1', api_url: 'https://slack.com/api?team=T1' }, 'api_url'],
      [
        microsoftGraph,
        { tenant_id: 't', client_id: 'c', client_secret: 's', graph_url: 'https://graph.microsoft.com#x' },
        'graph_url',
      ],
    ];
    for (const [connector, config, field] of configs) {
      const parsed = connector.configSchema.safeParse(config);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues.map((i) => i.path.join('.'))).toContain(field);
    }
  });

  it('an Okta org URL and a Graph URL are origins: a path copied along, or Okta’s -admin console domain, is refused', () => {
    const refusal = (connector: { configSchema: z.ZodType }, config: Record<string, unknown>) => {
      const parsed = connector.configSchema.safeParse(config);
      return parsed.success ? undefined : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const okta = { client_id: 'c', private_key: 'k' };
    // The token request would go to …/oauth2/default/oauth2/v1/token and every API call miss.
    expect(
      refusal(oktaUniversalLogout, { ...okta, org_url: 'https://example.okta.com/oauth2/default' }),
    ).toEqual([
      'org_url: must be the origin alone, e.g. https://example.okta.com, with no path, query or fragment',
    ]);
    expect(refusal(oktaItp, { org_url: 'https://example-admin.okta.com' })).toEqual([
      'org_url: is the admin console’s domain; use the org’s domain without -admin, e.g. https://example.okta.com',
    ]);
    expect(refusal(oktaItp, { org_url: 'https://example.okta.com/admin/dashboard' })?.[0]).toContain(
      'org_url',
    );
    // Entra refuses the scope https://graph.microsoft.com/v1.0/.default, and paths would be /v1.0/v1.0/….
    const graph = { tenant_id: 't', client_id: 'c', client_secret: 's' };
    expect(refusal(microsoftGraph, { ...graph, graph_url: 'https://graph.microsoft.com/v1.0' })).toEqual([
      'graph_url: must be the origin alone, e.g. https://graph.microsoft.com, with no path, query or fragment',
    ]);
    const parsed = oktaItp.configSchema.parse({ org_url: 'https://Example.okta.com:443//' }) as {
      org_url: string;
    };
    expect(parsed.org_url).toBe('https://example.okta.com');
  });

  it('a URL credentials go to must be https (plain http only for the local machine), as for the inbound connectors', () => {
    const problems = (connector: { configSchema: z.ZodType }, config: Record<string, unknown>) => {
      const parsed = connector.configSchema.safeParse(config);
      return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const clear = (field: string, why = '') =>
      `${field}: must be an https URL (the credentials would travel in clear text over http); plain http only for the local machine${why}`;
    const oauth = { client_id: 'ssf-bridge', client_secret: 'oauth-secret-1' };
    const cases: Array<[{ configSchema: z.ZodType }, Record<string, unknown>, string]> = [
      [
        scimDeprovision,
        { base_url: 'http://app.example.com/scim/v2', token: 'scim-token' },
        clear('base_url'),
      ],
      [
        scimDeprovision,
        {
          base_url: 'https://app.example.com/scim/v2',
          oauth: { ...oauth, token_url: 'http://auth.example.com/token' },
        },
        clear('oauth.token_url'),
      ],
      [slack, { token: 'xoxp-1', api_url: 'http://slack.example.com/api' }, clear('api_url')],
      [
        oktaUniversalLogout,
        { org_url: 'http://example.okta.com', client_id: 'c', private_key: 'k' },
        clear('org_url'),
      ],
      [
        microsoftGraph,
        { tenant_id: 't', client_id: 'c', client_secret: 's', graph_url: 'http://graph.microsoft.us' },
        clear('graph_url'),
      ],
      [
        ssfPush,
        {
          endpoint_url: 'http://rx.example.com/events',
          audience: 'rx',
          authorization_header: 'Bearer push-1',
        },
        'endpoint_url: must be an https URL (RFC 8935 delivers SETs over TLS); plain http only for the local machine',
      ],
      [
        webhook,
        {
          url: 'http://hooks.example.com/in',
          signing_secret: 'x'.repeat(32),
          authorization_header: 'Bearer soar-1',
        },
        clear('url', ' (authorization_header is set)'),
      ],
    ];
    for (const [connector, config, problem] of cases) expect(problems(connector, config)).toEqual([problem]);
    // SETs go over TLS whether or not a credential travels with them (RFC 8935 §1, PUSH-03).
    expect(problems(ssfPush, { endpoint_url: 'http://rx.example.com/events', audience: 'rx' })).toEqual([
      'endpoint_url: must be an https URL (RFC 8935 delivers SETs over TLS); plain http only for the local machine',
    ]);
    // No credential travels to a webhook without one: plain http stays possible.
    expect(problems(webhook, { url: 'http://hooks.example.com/in', signing_secret: 'x'.repeat(32) })).toEqual(
      [],
    );
    // The local machine: a proxy or test double on the same host.
    for (const host of ['127.0.0.1:8080', 'localhost', '[::1]:9000']) {
      expect(problems(scimDeprovision, { base_url: `http://${host}/scim/v2`, token: 'scim-token' })).toEqual(
        [],
      );
    }
  });

  it('an endpoint URL is kept exactly as configured: its trailing slash, and a key in its query', () => {
    const endpoint = endpointUrl('endpoint');
    for (const url of [
      'https://hooks.example.com/ssf/',
      'https://func.example.net/api/hook?code=abc/',
      'https://hooks.example.com/in?next=/',
    ]) {
      expect(endpoint.parse(url)).toBe(url);
    }
    expect(endpoint.safeParse('ftp://files.example.com/').success).toBe(false);
  });

  it('the outbound connectors keep full endpoints (url, token_url) and join paths to base URLs', () => {
    const hook = webhook.configSchema.parse({
      url: 'https://func.example.net/api/hook?code=abc/',
      signing_secret: 'x'.repeat(32),
    }) as { url: string };
    expect(hook.url).toBe('https://func.example.net/api/hook?code=abc/');
    const scim = scimDeprovision.configSchema.parse({
      base_url: 'https://app.example.com/scim/v2/',
      oauth: { token_url: 'https://app.example.com/oauth/token/', client_id: 'c', client_secret: 's3cret' },
    }) as { base_url: string; oauth: { token_url: string } };
    expect(scim.base_url).toBe('https://app.example.com/scim/v2');
    expect(scim.oauth.token_url).toBe('https://app.example.com/oauth/token/');
    const graph = microsoftGraph.configSchema.parse({
      tenant_id: 'contoso.onmicrosoft.com',
      client_id: 'c',
      client_secret: 's3cret',
      token_url: 'https://login.microsoftonline.us/contoso/oauth2/v2.0/token/',
      graph_url: 'https://graph.microsoft.us/',
    }) as { token_url: string; graph_url: string };
    expect(graph.token_url).toBe('https://login.microsoftonline.us/contoso/oauth2/v2.0/token/');
    expect(graph.graph_url).toBe('https://graph.microsoft.us');
    const okta = oktaUniversalLogout.configSchema.parse({
      org_url: 'https://example.okta.com/',
      client_id: 'c',
      private_key: 'k',
    }) as { org_url: string };
    expect(okta.org_url).toBe('https://example.okta.com');
    // RFC 8935 §2: the SETs go to the receiver's endpoint as the stream names it.
    const push = ssfPush.configSchema.parse({
      endpoint_url: 'https://rx.example.com/ssf/events/?stream=s-1/',
      audience: 'https://rx.example.com',
    }) as { endpoint_url: string };
    expect(push.endpoint_url).toBe('https://rx.example.com/ssf/events/?stream=s-1/');
  });
});
