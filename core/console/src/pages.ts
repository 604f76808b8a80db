import { ApiError, api, query, type Session } from './api.ts';
import { barChart, timelineChart, type TimelinePoint } from './charts.ts';
import { badge, h, shortType, subjectSearchTerm, subjectText, time } from './dom.ts';

export interface PageContext {
  session: Session;
  arg: string | undefined;
  params: URLSearchParams;
  /** What the action that asked for this render reported ("Replayed 3."), kept across it. */
  notice: string | undefined;
  /** Loads the page again; `notice` is shown by the page it loads. */
  rerender(notice?: string): void;
}

type Page = (ctx: PageContext) => Promise<HTMLElement>;
type Cell = Node | string | number | null;
interface Column<T> {
  label: string;
  cell(item: T): Cell;
}
interface Paged<T> {
  items: T[];
  next_cursor: string | null;
}

const PAGE_SIZE = '50';

function table<T>(
  columns: Column<T>[],
  items: T[],
  testId: string,
): { el: HTMLElement; add(items: T[]): void } {
  const body = h('tbody');
  const add = (rows: T[]) => {
    for (const item of rows) body.appendChild(h('tr', {}, ...columns.map((c) => h('td', {}, c.cell(item)))));
  };
  add(items);
  const el = h(
    'table',
    { 'data-test': testId },
    h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', {}, c.label)))),
    body,
  );
  return { el, add };
}

/** A table filled one server page at a time; "Load more" follows the cursor. */
async function pagedTable<T>(
  load: (cursor: string | null) => Promise<Paged<T>>,
  columns: Column<T>[],
  testId: string,
): Promise<HTMLElement> {
  let first: Paged<T>;
  try {
    first = await load(null);
  } catch (err) {
    return refused(err);
  }
  const t = table(columns, first.items, testId);
  let cursor = first.next_cursor;
  const more = h(
    'button',
    { type: 'button', class: 'more', 'data-test': `${testId}-more` },
    'Load more',
  ) as HTMLButtonElement;
  more.hidden = cursor === null;
  // A page that fails to load says so, and the button stays there to try again.
  const problem = h('p', { class: 'error', 'data-test': `${testId}-error`, role: 'alert' });
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const next = await load(cursor);
      t.add(next.items);
      cursor = next.next_cursor;
      more.hidden = cursor === null;
      problem.textContent = '';
    } catch (err) {
      problem.textContent = `Could not load more: ${(err as Error).message}`;
    } finally {
      more.disabled = false;
    }
  });
  return h(
    'div',
    {},
    first.items.length === 0 ? h('p', { class: 'empty' }, 'Nothing here.') : t.el,
    problem,
    more,
  );
}

/**
 * A list the API refused (a filter it does not take: `state=bogus`, `since=yesterday`) or could
 * not load: the message goes where the list would be, under the filter form, so the filter can be
 * corrected. A refused token is not shown here: it goes up to sign the operator out.
 */
function refused(err: unknown): HTMLElement {
  if (err instanceof ApiError && err.status === 401) throw err;
  return h('p', { class: 'error', role: 'alert', 'data-test': 'list-error' }, (err as Error).message);
}

function writeButton(
  ctx: PageContext,
  label: string,
  testId: string,
  action: () => Promise<void>,
  ariaLabel?: string,
): HTMLElement {
  const allowed = ctx.session.role === 'write';
  const button = h(
    'button',
    {
      type: 'button',
      'data-test': testId,
      'aria-label': ariaLabel,
      disabled: !allowed,
      title: allowed ? undefined : 'needs an admin token with the write role',
    },
    label,
  ) as HTMLButtonElement;
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action();
    } catch (err) {
      alert((err as Error).message);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

function filterForm(
  fields: Array<{ name: string; label: string; value: string | null }>,
  page: string,
): HTMLElement {
  const inputs = fields.map(
    (f) =>
      h('input', {
        name: f.name,
        placeholder: f.label,
        'aria-label': f.label,
        value: f.value ?? '',
      }) as HTMLInputElement,
  );
  return h(
    'form',
    {
      class: 'filters',
      onsubmit: (e: Event) => {
        e.preventDefault();
        location.hash = `#/${page}${query(Object.fromEntries(inputs.map((i) => [i.name, i.value.trim()])))}`;
      },
    },
    ...inputs,
    h('button', { type: 'submit' }, 'Filter'),
  );
}

const link = (href: string, text: string, testId?: string) =>
  h('a', { href, ...(testId ? { 'data-test': testId } : {}) }, text);
const json = (value: unknown) => h('pre', { class: 'json' }, JSON.stringify(value, null, 2));

/** An instance's last error with when it happened; it stays after recovery, so the time matters. */
function lastError(instance: any): Cell {
  if (!instance.last_error) return '—';
  const at: string | null = instance.last_error_at;
  if (!at) return instance.last_error;
  const recovered = instance.state === 'ok' ? ', since recovered' : '';
  return h('span', { 'data-test': 'last-error' }, instance.last_error, ` (at ${time(at)}${recovered})`);
}

const dashboard: Page = async (ctx) => {
  const window = ctx.params.get('window') ?? '24h';
  const o = await api(`/overview${query({ window })}`);
  const windows = ['1h', '6h', '24h', '7d'].flatMap((w) => [
    ' ',
    w === window ? h('strong', {}, w) : link(`#/dashboard?window=${w}`, w),
  ]);
  const instances = table(
    [
      { label: 'Instance', cell: (i: any) => i.id },
      { label: 'Kind', cell: (i: any) => i.kind },
      { label: 'Connector', cell: (i: any) => i.connector },
      { label: 'State', cell: (i: any) => badge(i.state) },
      { label: 'Last success', cell: (i: any) => time(i.last_success_at) },
      { label: 'Last error', cell: (i: any) => lastError(i) },
    ],
    o.instances,
    'instances',
  );
  const destinations = table(
    [
      {
        label: 'Destination',
        cell: (d: any) =>
          link(`#/deliveries?destination=${encodeURIComponent(d.destination_id)}`, d.destination_id),
      },
      { label: 'Delivered', cell: (d: any) => d.delivered },
      { label: 'Dead', cell: (d: any) => d.dead },
      {
        label: 'Success',
        cell: (d: any) => (d.success_rate === null ? '—' : `${(d.success_rate * 100).toFixed(1)} %`),
      },
      {
        label: 'Mean latency',
        cell: (d: any) => (d.mean_latency_ms === null ? '—' : `${d.mean_latency_ms} ms`),
      },
      { label: 'Backlog', cell: (d: any) => d.backlog },
      { label: 'Retrying', cell: (d: any) => d.retrying },
      { label: 'Circuit', cell: (d: any) => (d.circuit ? badge(d.circuit) : '—') },
    ],
    o.destinations,
    'destinations',
  );
  const buckets = o.activity.buckets;
  return h(
    'section',
    { 'data-test': 'dashboard' },
    h('h1', {}, 'Dashboard'),
    h(
      'p',
      { class: o.readiness.ready ? 'ready' : 'error', 'data-test': 'readiness' },
      o.readiness.ready ? 'Ready' : `Not ready: ${o.readiness.reasons.join('; ')}`,
    ),
    h('p', { class: 'windows' }, 'Window: ', ...windows),
    h('h2', {}, 'Connector health'),
    instances.el,
    h(
      'div',
      { class: 'charts' },
      h(
        'figure',
        {},
        h('figcaption', {}, 'Throughput: events accepted and SETs delivered'),
        barChart('throughput', buckets, [
          { key: 'accepted', label: 'accepted' },
          { key: 'delivered', label: 'delivered' },
        ]),
      ),
      h(
        'figure',
        {},
        h('figcaption', {}, 'Failures: dead-lettered SETs'),
        barChart('failures', buckets, [{ key: 'dead', label: 'dead' }]),
      ),
    ),
    h('h2', {}, 'Destinations and backlog'),
    destinations.el,
    h('p', {}, `Held for later release: ${o.scheduled}`),
  );
};

/**
 * What became of an event's SETs. An event with no deliveries was not sent at all (held until its
 * future time, routed nowhere, or its deliveries discarded): that is its own state, never "ok".
 */
function outcomeOf(deliveries: any[]): TimelinePoint['outcome'] {
  if (deliveries.length === 0) return 'none';
  if (deliveries.some((d) => d.state === 'dead')) return 'failed';
  if (deliveries.every((d) => d.state === 'delivered')) return 'ok';
  return 'waiting';
}

/** What each marker colour means, in the order of the legend. */
const OUTCOME_TEXT: Record<TimelinePoint['outcome'], string> = {
  ok: 'delivered everywhere',
  waiting: 'still on its way',
  failed: 'dead-lettered somewhere',
  none: 'not sent (held for a future time, routed nowhere, or discarded)',
};

function legend(): HTMLElement {
  return h(
    'ul',
    { class: 'legend', 'data-test': 'timeline-legend' },
    ...Object.entries(OUTCOME_TEXT).map(([outcome, text]) =>
      h('li', {}, h('span', { class: `swatch swatch-${outcome}`, 'aria-hidden': 'true' }), ` ${text}`),
    ),
  );
}

const timeline: Page = async (ctx) => {
  const subject = ctx.params.get('subject') ?? '';
  const input = h('input', {
    name: 'subject',
    placeholder: 'e-mail, phone number, user or device id',
    'aria-label': 'subject',
    value: subject,
  }) as HTMLInputElement;
  const form = h(
    'form',
    {
      class: 'filters',
      'data-test': 'timeline-search',
      onsubmit: (e: Event) => {
        e.preventDefault();
        location.hash = `#/timeline${query({ subject: input.value.trim() })}`;
      },
    },
    input,
    h('button', { type: 'submit' }, 'Search'),
  );
  const section = h('section', { 'data-test': 'timeline' }, h('h1', {}, 'Subject timeline'), form);
  if (!subject) return section;
  const entries: any[] = [];
  const chartHolder = h('div', { class: 'chart-holder' });
  const list = h('ol', { class: 'timeline', 'data-test': 'timeline-entries' });
  const more = h(
    'button',
    { type: 'button', class: 'more', 'data-test': 'timeline-more' },
    'Older events',
  ) as HTMLButtonElement;
  let cursor: string | null = null;
  const load = async () => {
    const page = await api(`/timeline${query({ subject, limit: PAGE_SIZE, cursor })}`);
    cursor = page.next_cursor;
    more.hidden = cursor === null;
    for (const item of page.items) {
      entries.push(item);
      const e = item.event;
      list.appendChild(
        h(
          'li',
          {
            id: `ev-${e.id}`,
            tabindex: -1,
            class: `entry entry-${outcomeOf(item.deliveries)}`,
            'data-test': 'timeline-entry',
          },
          h('div', { class: 'when' }, time(e.accepted_at)),
          h(
            'div',
            {},
            h('strong', {}, shortType(e.type)),
            ` from ${e.instance_id} · `,
            subjectText(e.subject),
          ),
          item.deliveries.length === 0
            ? h('p', { class: 'note', 'data-test': 'not-sent' }, OUTCOME_TEXT.none)
            : '',
          h(
            'ul',
            { class: 'deliveries' },
            ...item.deliveries.map((d: any) =>
              h(
                'li',
                {},
                link(`#/delivery/${d.id}`, `${d.destination_id}`, 'delivery-link'),
                ' ',
                badge(d.state),
                ` ${d.answer.outcome}`,
                d.last_error ? ` — ${d.last_error.message}` : '',
              ),
            ),
          ),
        ),
      );
    }
    chartHolder.replaceChildren(
      timelineChart(
        entries.map((i) => ({
          at: i.event.accepted_at,
          outcome: outcomeOf(i.deliveries),
          label: `${time(i.event.accepted_at)} ${shortType(i.event.type)}: ${OUTCOME_TEXT[outcomeOf(i.deliveries)]}`,
          anchor: `ev-${i.event.id}`,
        })),
        (anchor) => {
          const entry = document.getElementById(anchor);
          entry?.scrollIntoView({ block: 'center' });
          // The keyboard goes on from the event picked, not from the chart.
          entry?.focus({ preventScroll: true });
        },
      ),
    );
    return page;
  };
  let first: any;
  try {
    first = await load();
  } catch (err) {
    section.append(refused(err));
    return section;
  }
  // As in pagedTable: a page that fails to load says so, and the button stays to try again. It is
  // disabled while a page loads, so a second click does not load the same page twice.
  const problem = h('p', { class: 'error', 'data-test': 'timeline-error', role: 'alert' });
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      await load();
      problem.textContent = '';
    } catch (err) {
      problem.textContent = `Could not load older events: ${(err as Error).message}`;
    } finally {
      more.disabled = false;
    }
  });
  section.append(
    h('p', { 'data-test': 'timeline-terms' }, `Matching: ${first.terms.join(', ')}`),
    entries.length === 0
      ? h('p', { class: 'empty' }, 'No events about this subject.')
      : h('div', {}, chartHolder, legend()),
    list,
    problem,
    more,
  );
  return section;
};

/** A subject, linked to the timeline of its most specific identifier (see subjectSearchTerm). */
function subjectLink(subject: unknown): Cell {
  const term = subjectSearchTerm(subject);
  const text = subjectText(subject);
  return term ? link(`#/timeline${query({ subject: term })}`, text, 'subject-link') : text;
}

const events: Page = async (ctx) => {
  const p = ctx.params;
  const filters = {
    instance: p.get('instance'),
    type: p.get('type'),
    subject: p.get('subject'),
    since: p.get('since'),
    until: p.get('until'),
  };
  return h(
    'section',
    {},
    h('h1', {}, 'Events'),
    filterForm(
      [
        { name: 'instance', label: 'instance', value: filters.instance },
        { name: 'type', label: 'type (caep.session-revoked)', value: filters.type },
        { name: 'subject', label: 'subject contains', value: filters.subject },
        { name: 'since', label: 'since (ISO time)', value: filters.since },
        { name: 'until', label: 'until (ISO time)', value: filters.until },
      ],
      'events',
    ),
    await pagedTable(
      (cursor) => api(`/events${query({ ...filters, limit: PAGE_SIZE, cursor })}`),
      [
        { label: 'Accepted', cell: (e: any) => time(e.accepted_at) },
        { label: 'Type', cell: (e: any) => shortType(e.type) },
        { label: 'Source', cell: (e: any) => e.instance_id },
        { label: 'Subject', cell: (e: any) => subjectLink(e.subject) },
        { label: 'Deliveries', cell: (e: any) => link(`#/deliveries?event=${e.id}`, 'show') },
      ],
      'events',
    ),
  );
};

const deliveries: Page = async (ctx) => {
  const p = ctx.params;
  const filters = { destination: p.get('destination'), state: p.get('state'), event: p.get('event') };
  return h(
    'section',
    {},
    h('h1', {}, 'Deliveries'),
    filterForm(
      [
        { name: 'destination', label: 'destination', value: filters.destination },
        { name: 'state', label: 'state (pending, delivered, dead)', value: filters.state },
        { name: 'event', label: 'event id', value: filters.event },
      ],
      'deliveries',
    ),
    await pagedTable(
      (cursor) => api(`/deliveries${query({ ...filters, limit: PAGE_SIZE, cursor })}`),
      [
        { label: 'Id', cell: (d: any) => link(`#/delivery/${d.id}`, String(d.id), 'delivery-link') },
        { label: 'Destination', cell: (d: any) => d.destination_id },
        { label: 'State', cell: (d: any) => badge(d.state) },
        { label: 'Attempts', cell: (d: any) => d.attempts },
        { label: 'Updated', cell: (d: any) => time(d.updated_at) },
        { label: 'Last error', cell: (d: any) => d.last_error?.message ?? '—' },
      ],
      'deliveries',
    ),
  );
};

const delivery: Page = async (ctx) => {
  const d = await api(`/deliveries/${encodeURIComponent(ctx.arg ?? '')}`);
  const answer = d.answer;
  return h(
    'section',
    { 'data-test': 'delivery' },
    h('h1', {}, `Delivery ${d.delivery.id} to ${d.delivery.destination_id}`),
    h(
      'dl',
      {},
      h('dt', {}, 'State'),
      h('dd', {}, badge(d.delivery.state)),
      h('dt', {}, 'Attempts'),
      h('dd', {}, String(d.delivery.attempts)),
      h('dt', {}, 'jti'),
      h('dd', {}, d.delivery.jti),
      h('dt', {}, 'Enqueued'),
      h('dd', {}, time(d.delivery.enqueued_at)),
      h('dt', {}, 'Delivered'),
      h('dd', {}, time(d.delivery.delivered_at)),
    ),
    h('h2', {}, "Receiver's answer"),
    h(
      'p',
      { 'data-test': 'answer' },
      badge(answer.outcome),
      answer.error
        ? ` ${answer.error.status ?? ''} ${answer.error.code}: ${answer.error.message}`
        : answer.at
          ? ` at ${time(answer.at)}`
          : '',
    ),
    h('h2', {}, 'Decoded SET'),
    h(
      'p',
      { class: 'note' },
      d.set.source === 'stored'
        ? 'The SET as signed for the last attempt.'
        : d.set.source === 'rebuilt'
          ? 'Claims rebuilt from the stored event: signing is deterministic apart from the signature, which is not kept after delivery.'
          : `Not available: ${d.set.reason}`,
    ),
    d.set.header ? json(d.set.header) : '',
    h('div', { 'data-test': 'set-claims' }, d.set.claims ? json(d.set.claims) : ''),
    h('h2', {}, 'Event'),
    d.event ? json(d.event) : h('p', {}, 'The event was pruned.'),
  );
};

const deadLetters: Page = async (ctx) => {
  const p = ctx.params;
  const filters = { destination: p.get('destination'), type: p.get('type') };
  const selected = new Set<number>();
  // A live region, so the result is announced; the refresh below shows it again (ctx.notice).
  const status = h('p', { role: 'status', 'data-test': 'dlq-status' }, ctx.notice ?? '');
  const form = filterForm(
    [
      { name: 'destination', label: 'destination', value: filters.destination },
      { name: 'type', label: 'type', value: filters.type },
    ],
    'dead-letters',
  );
  const load = (cursor: string | null) =>
    api(`/dead-letters${query({ ...filters, limit: PAGE_SIZE, cursor })}`);
  let first: any;
  try {
    first = await load(null);
  } catch (err) {
    return h('section', { 'data-test': 'dead-letters' }, h('h1', {}, 'Dead letters'), form, refused(err));
  }
  const act = async (action: 'replay' | 'purge') => {
    if (selected.size === 0) throw new Error('select letters first');
    const n = selected.size;
    // Both are confirmed: receivers act on a replayed SET again (a session revoked, an account
    // disabled, perhaps long after), and a purge cannot be undone.
    const question =
      action === 'replay'
        ? `Send ${n} dead-lettered SET(s) to their receivers again? Receivers act on them again.`
        : `Delete ${n} dead letter(s) for good?`;
    if (!confirm(question)) return;
    const result = await api(`/dead-letters/${action}`, { body: { ids: [...selected] } });
    const done = action === 'replay' ? `Replayed ${result.replayed}.` : `Purged ${result.purged}.`;
    status.textContent = done;
    // A moment for replayed letters to leave the list before it is loaded again.
    setTimeout(() => ctx.rerender(done), 600);
  };
  return h(
    'section',
    { 'data-test': 'dead-letters' },
    h('h1', {}, `Dead letters (${first.total})`),
    form,
    h(
      'p',
      {},
      writeButton(ctx, 'Replay selected', 'replay', () => act('replay')),
      ' ',
      writeButton(ctx, 'Purge selected', 'purge', () => act('purge')),
    ),
    status,
    await pagedTable(
      async (cursor) => (cursor === null ? first : load(cursor)),
      [
        {
          label: '',
          cell: (l: any) => {
            const box = h('input', {
              type: 'checkbox',
              'aria-label': `select ${l.id}`,
              'data-test': 'dlq-select',
            }) as HTMLInputElement;
            box.addEventListener('change', () => (box.checked ? selected.add(l.id) : selected.delete(l.id)));
            return box;
          },
        },
        { label: 'Id', cell: (l: any) => link(`#/delivery/${l.id}`, String(l.id)) },
        { label: 'Destination', cell: (l: any) => l.destination_id },
        { label: 'Type', cell: (l: any) => shortType(l.event_type) },
        { label: 'Subject', cell: (l: any) => subjectText(l.subject) },
        { label: 'Attempts', cell: (l: any) => l.attempts },
        { label: 'Dead since', cell: (l: any) => time(l.dead_at) },
        { label: 'Last error', cell: (l: any) => l.last_error?.message ?? '—' },
      ],
      'dead-letter-table',
    ),
  );
};

const STATUS_ACTION = { enabled: 'Enable', paused: 'Pause', disabled: 'Disable' } as const;

/**
 * Disabling drops what the stream holds (the transmitter empties its poll queue and discards its
 * unfinished pushes), unlike pausing, which keeps it: the operator confirms knowing how much.
 */
function disableQuestion(s: any): string {
  const queued = Number(s.poll_queue_depth) || 0;
  const held =
    queued > 0
      ? `Its ${queued} SET(s) waiting to be polled, and any still being pushed,`
      : 'Any SETs queued for it or still being pushed';
  return `Disable stream ${s.stream_id}? ${held} are dropped, not delivered; pausing holds them instead.`;
}

const streams: Page = async (ctx) => {
  const rows = await pagedTable(
    (cursor) => api(`/streams${query({ limit: PAGE_SIZE, cursor, status: ctx.params.get('status') })}`),
    [
      { label: 'Stream', cell: (s: any) => s.stream_id },
      { label: 'Receiver', cell: (s: any) => s.client_id },
      { label: 'Delivery', cell: (s: any) => s.delivery_method ?? '—' },
      {
        label: 'Status',
        cell: (s: any) => h('span', {}, badge(s.status), s.status_reason ? ` ${s.status_reason}` : ''),
      },
      { label: 'Poll queue', cell: (s: any) => s.poll_queue_depth },
      {
        label: 'Actions',
        cell: (s: any) =>
          h(
            'span',
            {},
            ...(['enabled', 'paused', 'disabled'] as const)
              .filter((st) => st !== s.status)
              .map((st) => {
                const label = STATUS_ACTION[st];
                return writeButton(
                  ctx,
                  label,
                  `stream-${st}`,
                  async () => {
                    if (st === 'disabled' && !confirm(disableQuestion(s))) return;
                    await api(`/streams/${encodeURIComponent(s.stream_id)}/status`, {
                      body: { status: st, reason: 'changed in the console' },
                    });
                    ctx.rerender();
                  },
                  `${label} stream ${s.stream_id}`,
                );
              }),
            writeButton(
              ctx,
              'Delete',
              'stream-delete',
              async () => {
                if (!confirm(`Delete stream ${s.stream_id}? Its receiver can create a new one.`)) return;
                await api(`/streams/${encodeURIComponent(s.stream_id)}`, { method: 'DELETE' });
                ctx.rerender();
              },
              `Delete stream ${s.stream_id}`,
            ),
          ),
      },
    ],
    'streams',
  );
  return h('section', {}, h('h1', {}, 'SSF streams'), rows);
};

const keys: Page = async (ctx) => {
  const list = await api(`/keys${query({ limit: PAGE_SIZE })}`);
  const t = table(
    [
      { label: 'kid', cell: (k: any) => k.kid },
      { label: 'Algorithm', cell: (k: any) => k.alg },
      { label: 'Status', cell: (k: any) => badge(k.status) },
      { label: 'Source', cell: (k: any) => k.source },
      { label: 'Created', cell: (k: any) => time(k.created_at) },
      { label: 'Leaves the JWKS', cell: (k: any) => time(k.retires_at) },
    ],
    list.items,
    'keys',
  );
  return h(
    'section',
    {},
    h('h1', {}, 'Signing keys'),
    list.rotatable
      ? writeButton(ctx, 'Rotate now', 'rotate', async () => {
          if (!confirm('Create a new signing key? The current one stays in the JWKS for the grace period.'))
            return;
          await api('/keys/rotate', { body: {} });
          ctx.rerender();
        })
      : h('p', {}, 'Keys come from the configuration (keys.files / keys.secrets); rotate them there.'),
    t.el,
  );
};

const audit: Page = async (ctx) => {
  const filters = { actor: ctx.params.get('actor'), action: ctx.params.get('action') };
  return h(
    'section',
    {},
    h('h1', {}, 'Audit log'),
    filterForm(
      [
        { name: 'actor', label: 'token name', value: filters.actor },
        { name: 'action', label: 'action (dead_letters.replay)', value: filters.action },
      ],
      'audit',
    ),
    await pagedTable(
      (cursor) => api(`/audit${query({ ...filters, limit: PAGE_SIZE, cursor })}`),
      [
        { label: 'When', cell: (a: any) => time(a.at) },
        { label: 'Who', cell: (a: any) => `${a.actor} (${a.role})` },
        { label: 'Action', cell: (a: any) => a.action },
        { label: 'Target', cell: (a: any) => a.target },
        { label: 'Outcome', cell: (a: any) => badge(String(a.detail.outcome)) },
      ],
      'audit',
    ),
  );
};

export const PAGES: Record<string, Page> = {
  dashboard,
  timeline,
  events,
  deliveries,
  delivery,
  'dead-letters': deadLetters,
  streams,
  keys,
  audit,
};
