import { secret, z } from '../../core/plugin-api/index.ts';

export const configSchema = z.strictObject({
  token: secret('Bearer token senders must present (Authorization: Bearer <token>).'),
  previous_token: secret('A second accepted token, for rotating `token` without downtime.').optional(),
  max_events_per_request: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(1_000)
    .meta({ description: 'Largest number of events one request may carry; more is refused with 400.' }),
});

export type EventsApiConfig = z.output<typeof configSchema>;
