import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../config/index.ts';
import { configCrossChecks, defaultRegistry } from './defaults.ts';

/** A CrowdStrike webhook instance naming `owners` in subjects.device_owners, beside an Intune instance. */
function configWith(owners: string[], intuneEnabled = true): string {
  return `
inbound:
  - id: intune-corp
    connector: intune
    enabled: ${intuneEnabled}
    config:
      tenant_id: contoso.onmicrosoft.com
      client_id: 6731de76-14a6-49ae-97bc-6eba6914391e
      client_secret: intune-client-secret
  - id: api
    connector: events-api
    config: { token: ingest-token-0123456789abcdef }
  - id: falcon
    connector: crowdstrike-falcon
    config:
      mode: webhook
      webhook: { secret: falcon-workflow-secret-0123456789 }
      subjects: { device_owners: ${JSON.stringify(owners)} }
`;
}

const load = (text: string) =>
  loadConfigText(text, { registry: defaultRegistry(), crossChecks: configCrossChecks() });

describe('instances a connector config names (definition.references)', () => {
  it('accepts an MDM instance as a source of device owners', async () => {
    const result = await load(configWith(['intune-corp']));
    expect(result.ok).toBe(true);
  });

  it('refuses unknown, non-MDM and disabled instances, each at its own path', async () => {
    const result = await load(configWith(['intune-korp', 'api']));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems).toEqual([
      {
        path: 'inbound[2].config.subjects.device_owners[0]',
        message: 'no instance "intune-korp" in this config',
      },
      {
        path: 'inbound[2].config.subjects.device_owners[1]',
        message:
          '"api" is an instance of events-api, which keeps no device records; name a jamf-pro, intune or kandji instance',
      },
    ]);
    const disabled = await load(configWith(['intune-corp'], false));
    expect(!disabled.ok && disabled.problems).toEqual([
      {
        path: 'inbound[2].config.subjects.device_owners[0]',
        message: '"intune-corp" is disabled, so its device records are not kept up to date',
      },
    ]);
  });

  it('refuses an instance named twice', async () => {
    const result = await load(configWith(['intune-corp', 'intune-corp']));
    expect(!result.ok && result.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'inbound[2].config.subjects.device_owners: names an instance twice',
    ]);
  });
});

describe('subjects.aliases (checked as the catalog checks subjects)', () => {
  const withAliases = (aliases: string) => `
inbound:
  - id: api
    connector: events-api
    config: { token: ingest-token-0123456789abcdef }
subjects:
  aliases:
${aliases}
`;

  it('refuses a bad from or to at its path, and a from given twice', async () => {
    const result = await load(
      withAliases(`    - from: { format: email, email: dana@home.example }
      to: { format: email, email: dana.lee@corp.example }
    - from: { format: email, email: not-an-address }
      to: { format: email, mail: dana.lee@corp.example }
    - from: { format: email, email: dana@HOME.example }
      to: { format: opaque, id: WID-7 }`),
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems.map((p) => p.path)).toEqual([
      'subjects.aliases[1].from.email',
      'subjects.aliases[1].to.email',
      'subjects.aliases[1].to.mail',
      'subjects.aliases[2].from',
    ]);
    expect(!result.ok && result.problems[3]?.message).toMatch(/subjects\.aliases\[0\]\.from/);
  });

  it('accepts aliases, complex and loosely cased subjects on either side', async () => {
    const result = await load(
      withAliases(`    - from: { format: email, email: Dana@HOME.example }
      to: { format: aliases, identifiers: [{ format: opaque, id: WID-7 }, { format: email, email: dana.lee@corp.example }] }`),
    );
    expect(result.ok && true).toBe(true);
  });
});
