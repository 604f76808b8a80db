import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createScimService } from './connector.ts';
import { mapRequest, type ScimSimulationState } from './mapping.ts';

/** SCIM 2.0 service: HR systems and identity providers provision users into ssf-bridge. */
export const scimServiceConnector = defineConnector<typeof configSchema, ScimSimulationState>({
  manifest: {
    id: 'scim-service',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'SCIM 2.0 service (provisioning target)',
    description:
      'Acts as a SCIM 2.0 service provider (RFC 7644) that an HR system or identity provider provisions users into; deactivation, reactivation, deletion and userName or primary email changes become RISC and CAEP events.',
    emits: [
      'risc.account-disabled',
      'caep.session-revoked',
      'risc.account-enabled',
      'risc.account-purged',
      'risc.identifier-changed',
    ],
    capabilities: { webhook: true, scim: true },
    conformance: {
      skip: {
        'delivery.at-least-once':
          'SCIM requests are addressed by method and path (PATCH /Users/{id}); the kit posts fixture inputs to the instance root, which is not a SCIM resource. The same guarantee is tested in scim-service.test.ts by failing the persist of a PATCH.',
        'delivery.webhook-ack-after-persist':
          'As for delivery.at-least-once: the kit cannot address /Users/{id}; scim-service.test.ts checks that a PATCH whose persist fails is answered 503 and changes nothing.',
        'delivery.checkpoint-after-persist':
          'As for delivery.at-least-once: the kit cannot address /Users/{id}; scim-service.test.ts checks that a failed persist leaves the stored user unchanged.',
      },
    },
  },
  configSchema,
  examples: [
    {
      title: 'Provisioning target for Okta or Microsoft Entra',
      config: {
        token: '${env:SCIM_BEARER_TOKEN}',
        public_url: 'https://bridge.example.com/scim/v2/hr-scim',
        subject_format: 'email',
      },
    },
  ],
  map: (record, config, state) => mapRequest(record, config, state, new Date()),
  create: createScimService,
});
