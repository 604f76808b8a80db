import { z } from 'zod';

const severitySchema = z.enum(['low', 'medium', 'high', 'critical']);
const subjectSchema = z
  .looseObject({ format: z.string().min(1) })
  .meta({ description: 'A subject identifier, e.g. {format: email, email: a@example.com}.' });

const routeSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lowercase letters, digits, - or _')
      .optional()
      .meta({ description: 'Names the route in logs and metrics; defaults to route-<position>.' }),
    from: z
      .union([z.literal('*'), z.array(z.string().min(1)).min(1)])
      .default('*')
      .meta({ description: "Inbound instance ids whose events this route takes, or '*' for all." }),
    event_types: z.array(z.string().min(1)).min(1).optional().meta({
      description: 'Event types (URIs or short names such as caep.session-revoked); all when omitted.',
    }),
    subjects: z.array(z.string().min(1)).min(1).optional().meta({
      description:
        "Globs matched against the subject's identifiers (email, phone number, URI, id…), e.g. '*@example.com'; all when omitted.",
    }),
    min_severity: severitySchema.optional().meta({
      description: 'Only events of this severity or higher; events without a severity do not match.',
    }),
    to: z
      .array(z.string().min(1))
      .default([])
      .meta({ description: 'Outbound instance ids that receive the matching events.' }),
    streams: z
      .union([z.boolean(), z.array(z.string().min(1)).min(1)])
      .default(false)
      .meta({ description: 'true: every SSF stream that covers the subject; or a list of stream ids.' }),
  })
  .refine((r) => r.to.length > 0 || r.streams !== false, {
    message: 'a route must send its events somewhere: set `to`, `streams`, or both',
  });

/** The `routes:` block of the root config. */
export const routesConfigSchema = z
  .array(routeSchema)
  .default([])
  .superRefine((routes, ctx) => {
    const seen = new Set<string>();
    routes.forEach((route, index) => {
      if (route.id === undefined) return;
      if (seen.has(route.id))
        ctx.addIssue({ code: 'custom', message: `duplicate route id ${route.id}`, path: [index, 'id'] });
      seen.add(route.id);
    });
  })
  .meta({ description: 'Which events go to which outbound instances and SSF streams.' });

/** The `subjects:` block of the root config: how subjects are rewritten before routing. */
export const subjectsConfigSchema = z
  .strictObject({
    aliases: z
      .array(z.strictObject({ from: subjectSchema, to: subjectSchema }))
      .default([])
      .meta({ description: 'Subjects replaced by another identifier before routing and delivery.' }),
  })
  .prefault({});

export type RouteConfig = z.output<typeof routeSchema>;
export type RoutesConfig = z.output<typeof routesConfigSchema>;
export type RoutesConfigInput = z.input<typeof routesConfigSchema>;
export type SubjectsConfig = z.output<typeof subjectsConfigSchema>;

export interface RouteReferenceProblem {
  path: Array<string | number>;
  message: string;
}

/** Route entries naming instances the config does not define (checked once the config is loaded). */
export function routeReferenceProblems(
  routes: RoutesConfig,
  known: { inbound: Iterable<string>; outbound: Iterable<string> },
): RouteReferenceProblem[] {
  const inbound = new Set(known.inbound);
  const outbound = new Set(known.outbound);
  const problems: RouteReferenceProblem[] = [];
  routes.forEach((route, index) => {
    if (route.from !== '*') {
      route.from.forEach((id, i) => {
        if (!inbound.has(id))
          problems.push({ path: [index, 'from', i], message: `no inbound instance has id ${id}` });
      });
    }
    route.to.forEach((id, i) => {
      if (!outbound.has(id))
        problems.push({ path: [index, 'to', i], message: `no outbound instance has id ${id}` });
    });
  });
  return problems;
}
