import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createSlack } from './connector.ts';

/** Slack Enterprise Grid session reset. */
export const slack = defineConnector({
  manifest: {
    id: 'slack',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Slack (Enterprise Grid session reset)',
    description:
      'Signs users out of Slack Enterprise Grid (admin.users.session.reset) on session-revoked and account-disabled, finding them by email.',
    accepts: ['caep.session-revoked', 'risc.account-disabled'],
  },
  configSchema,
  examples: [
    { title: 'All sessions on both events', config: { token: '${env:SLACK_ADMIN_TOKEN}' } },
    {
      title: 'Leavers only, web sessions',
      config: { token: '${env:SLACK_ADMIN_TOKEN}', trigger_on: ['account-disabled'], sessions: 'web' },
    },
  ],
  create: (ctx, config) => createSlack(ctx, config),
});
