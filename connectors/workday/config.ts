import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { leaverPolicyShape } from '../_shared/hr-leaver.ts';

const basicAuth = z
  .strictObject({
    type: z.literal('basic').meta({ description: 'Integration System User with a password.' }),
    username: z
      .string()
      .min(1)
      .meta({ description: 'ISU user name, usually with the tenant: `ISU_SSF@acme`.' }),
    password: secret('ISU password.'),
  })
  .meta({ description: 'Basic (RaaS) or WS-Security UsernameToken (SOAP) with an Integration System User.' });

const refreshTokenAuth = z
  .strictObject({
    type: z.literal('oauth_refresh_token').meta({ description: 'OAuth 2.0 refresh-token grant.' }),
    client_id: z.string().min(1).meta({ description: 'Client id of the API client registered in Workday.' }),
    client_secret: secret('Client secret of the API client.'),
    refresh_token: secret('Non-expiring refresh token issued to the API client for the integration user.'),
    token_url: z
      .url()
      .optional()
      .meta({ description: 'Token endpoint; defaults to <base_url>/ccx/oauth2/<tenant>/token.' }),
  })
  .meta({ description: 'OAuth 2.0 bearer tokens obtained with a refresh token.' });

/** The largest `max_response_bytes`: a body is read whole as one string, and V8 caps those near 512 MiB. */
export const MAX_RESPONSE_BYTES = 500 * 1_048_576;

export const columnsSchema = z
  .strictObject({
    employee_id: z
      .string()
      .min(1)
      .default('Employee_ID')
      .meta({ description: 'Column with the employee id.' }),
    work_email: z.string().min(1).default('Work_Email').meta({ description: 'Column with the work email.' }),
    user_name: z.string().min(1).default('User_Name').meta({ description: 'Column with the user name.' }),
    active_status: z.string().min(1).default('Active_Status').meta({
      description: 'Column saying whether the worker is active (1/0, true/false, Active/Terminated).',
    }),
    termination_date: z
      .string()
      .min(1)
      .default('Termination_Date')
      .meta({ description: 'Column with the termination date.' }),
    last_day_of_work: z
      .string()
      .min(1)
      .default('Last_Day_of_Work')
      .meta({ description: 'Column with the last day of work.' }),
    termination_reason: z
      .string()
      .min(1)
      .default('Primary_Termination_Reason')
      .meta({ description: 'Column with the termination reason (logged, never sent to receivers).' }),
    hire_date: z.string().min(1).default('Hire_Date').meta({
      description:
        'Column with the hire date (optional in the report): a worker inactive only because the hire date lies ahead (a pre-hire) is no leaver.',
    }),
  })
  .prefault({})
  .meta({ description: 'Report column names, as the custom report names them.' });

const raasSchema = z
  .strictObject({
    owner: z.string().min(1).meta({ description: 'Workday account that owns the report, e.g. `ISU_SSF`.' }),
    report: z.string().min(1).meta({ description: 'Report name as in its URL, e.g. `SSF_Worker_Status`.' }),
    prompts: z
      .record(z.string(), z.string())
      .default({})
      .meta({ description: 'Fixed report prompts sent as query parameters.' }),
    since_prompt: z.string().min(1).optional().meta({
      description:
        'Prompt that receives the time of the previous run (ISO 8601), for reports such as "changed since".',
    }),
    columns: columnsSchema,
  })
  .meta({ description: 'The web-service-enabled custom report (RaaS) to poll.' });

const soapSchema = z
  .strictObject({
    version: z
      .string()
      .regex(/^v\d+(\.\d+)?$/, 'must be a Workday web service version such as v43.0')
      .default('v43.0')
      .meta({ description: 'Human_Resources web service version.' }),
    page_size: z
      .number()
      .int()
      .min(1)
      .max(999)
      .default(100)
      .meta({ description: 'Workers per Get_Workers page (Response_Filter/Count).' }),
  })
  .prefault({})
  .meta({ description: 'Get_Workers (SOAP) settings.' });

export const configSchema = z
  .strictObject({
    mode: z.enum(['raas', 'soap']).meta({
      description:
        '`raas`: poll a custom report (Report-as-a-Service, JSON); `soap`: poll Get_Workers with transaction-log windows (Human_Resources).',
    }),
    base_url: z
      .url({ protocol: /^https?$/ })
      .meta({ description: 'Workday web services host, e.g. https://wd2-impl-services1.workday.com.' }),
    tenant: z.string().min(1).meta({ description: 'Workday tenant name, e.g. `acme`.' }),
    auth: z
      .discriminatedUnion('type', [basicAuth, refreshTokenAuth])
      .meta({ description: 'How to authenticate.' }),
    raas: raasSchema.optional(),
    soap: soapSchema,
    poll_interval: duration('How often Workday is polled.', { min: 100 }).prefault('15m'),
    initial_lookback: duration('How far back the first run looks for changes.').prefault('7d'),
    release_interval: duration('How often held (future-dated) terminations are checked.', {
      min: 1000,
    }).prefault('1m'),
    request_timeout: duration('Timeout of one request to Workday.', { min: 100, max: 600_000 }).prefault(
      '60s',
    ),
    max_response_bytes: z.number().int().min(1_048_576).max(MAX_RESPONSE_BYTES).default(104_857_600).meta({
      description:
        'Largest answer accepted from Workday, in bytes (default 100 MiB: a RaaS report of some 400,000 workers). A full report larger than this is better read as changes (`raas.since_prompt`); a Get_Workers page, with a smaller `soap.page_size`. At most 500 MiB, the largest text Node.js reads whole.',
    }),
    ...leaverPolicyShape,
  })
  .refine((c) => c.mode !== 'raas' || c.raas !== undefined, {
    message: 'mode raas needs the raas block (owner and report)',
    path: ['raas'],
  });

export type WorkdayConfig = z.output<typeof configSchema>;
export type WorkdayColumns = z.output<typeof columnsSchema>;
