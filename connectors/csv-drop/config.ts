import { duration, z } from '../../core/plugin-api/index.ts';
import { backfillWindow, leaverPolicyShape } from '../_shared/hr-leaver.ts';

const column = (name: string, what: string) =>
  z
    .string()
    .min(1)
    .default(name)
    .meta({ description: `Header of the column with ${what}.` });

export const columnsSchema = z
  .strictObject({
    employee_id: column('employee_id', 'the employee id (required)'),
    email: column('email', 'the work email (required)'),
    status: column('status', 'the employment status (required)'),
    effective_date: column(
      'effective_date',
      'the date the status took or takes effect (required; a terminated row needs it, or a termination_date; on an active row a date ahead is a rehire from then)',
    ),
    termination_date: column('termination_date', 'the termination date (optional column)'),
    username: column('username', 'the user name (optional column)'),
    previous_email: column('previous_email', 'the work email before a change (optional column)'),
  })
  .prefault({})
  .meta({ description: 'Column names in the export; matched without regard to case.' });

export const configSchema = z.strictObject({
  folder: z.string().min(1).meta({ description: 'Folder the HR system drops its CSV exports into.' }),
  pattern: z
    .string()
    .min(1)
    .default('*.csv')
    .meta({ description: 'File names to pick up (`*` and `?` wildcards); anything else is left alone.' }),
  delimiter: z
    .string()
    .length(1)
    .refine((d) => d !== '"' && d !== '\n' && d !== '\r', 'a quote or a line break cannot separate fields')
    .default(',')
    .meta({ description: 'Field delimiter (`,` by default; `;` for some European exports).' }),
  scan_interval: duration(
    'How often the folder is scanned (changes seen by the watcher start a scan sooner), and how often held terminations and rehires are checked.',
  ).prefault('10s'),
  settle_time: duration(
    'A file is read only once it has not changed for this long, and two scans in a row have found it the same size and time (it may still be written). 0 when exports are moved into the folder complete (an atomic rename): a file is read when first seen.',
  ).prefault('5s'),
  columns: columnsSchema,
  status_values: z
    .strictObject({
      active: z
        .array(z.string().min(1))
        .min(1)
        .default(['active'])
        .meta({ description: 'Values meaning employed.' }),
      terminated: z
        .array(z.string().min(1))
        .min(1)
        .default(['terminated'])
        .meta({ description: 'Values meaning the employee left.' }),
      leave: z.array(z.string().min(1)).default(['leave']).meta({
        description:
          'Values meaning on leave: still employed (no event) until the row’s termination date has passed; a termination already reported stays.',
      }),
    })
    .prefault({})
    .meta({ description: 'Status values, matched without regard to case.' }),
  missing_rows: z.enum(['ignore', 'terminate']).default('ignore').meta({
    description:
      '`ignore`: exports may list only what changed: an employee missing from a later export is left as is, and a termination a later export shows is sent however old its date (entered late), even for an employee seen there first; `terminate`: every export lists every employee, and a missing active employee is a leaver.',
  }),
  mass_change_guard: z
    .strictObject({
      max_ratio: z.number().gt(0).max(1).default(0.1).meta({
        description:
          'Largest share of the previous export that may turn into leavers (or be missing) at once; more refuses the file.',
      }),
      min_rows: z
        .number()
        .int()
        .min(0)
        .default(10)
        .meta({ description: 'The guard only applies when more than this many rows flip or are missing.' }),
    })
    .prefault({})
    .meta({
      description: 'Refuses a file that would fire a mass leaver event (a truncated or wrong export).',
    }),
  ...leaverPolicyShape,
  backfill_window: backfillWindow(
    'Keeps old leavers quiet: an employee first seen in the first export (or, with missing_rows: terminate, in any export: each lists everyone) with a termination that took effect before this window is recorded without events (logged, and counted as backfilled). With missing_rows: ignore, a termination a later export brings up is sent however old its date (entered late).',
  ),
});

export type CsvDropConfig = z.output<typeof configSchema>;
