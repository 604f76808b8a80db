import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { baseUrl, requestTimeout } from '../_shared/outbound-config.ts';

export const TRIGGERS = ['session-revoked', 'account-disabled'] as const;

export const configSchema = z.strictObject({
  token: secret(
    'A user token (xoxp-) of an Enterprise Grid Org Owner or Admin, from an org-installed app with the admin.users:write and users:read.email scopes.',
  ),
  trigger_on: z
    .array(z.enum(TRIGGERS))
    .min(1)
    .default([...TRIGGERS])
    .meta({
      description:
        'Events that reset the user’s Slack sessions: caep.session-revoked, risc.account-disabled.',
    }),
  sessions: z.enum(['all', 'web', 'mobile']).default('all').meta({
    description: 'Which sessions to end: all of them, only web (web_only) or only mobile (mobile_only).',
  }),
  api_url: baseUrl('Slack Web API base URL.', { credentials: true }).default('https://slack.com/api'),
  user_cache_ttl: duration(
    'How long an email → Slack user id lookup is reused; 0 turns the cache off.',
  ).default(3_600_000),
  request_timeout: requestTimeout(10_000),
});

export type SlackConfig = z.output<typeof configSchema>;
