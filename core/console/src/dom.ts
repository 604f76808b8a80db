/** A tiny DOM builder: text always goes in as text, never as HTML. */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

export function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else if (value !== undefined && value !== false) el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(
  tag: string,
  attrs: Record<string, string | number> = {},
  ...children: Node[]
): SVGElement {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children) el.appendChild(child);
  return el;
}

export function svgText(x: number, y: number, text: string, cls = 'axis'): SVGElement {
  const el = svg('text', { x, y, class: cls });
  el.textContent = text;
  return el;
}

export function time(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

export function shortType(uri: string): string {
  return uri.replace(/^https:\/\/schemas\.openid\.net\/secevent\/([a-z]+)\/event-type\//, '$1.');
}

export function badge(text: string): HTMLElement {
  return h('span', { class: `badge badge-${text.replace(/[^a-z_-]/gi, '')}` }, text);
}

export function subjectText(subject: unknown): string {
  const parts: string[] = [];
  const walk = (value: unknown, key = ''): void => {
    if (typeof value === 'string' && key !== 'format') parts.push(value);
    else if (Array.isArray(value)) value.forEach((v) => walk(v));
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, k);
  };
  walk(subject);
  return parts.join(' · ');
}

/** Members that name one subject, most specific first (RFC 9493, SSF 1.0 §3.5). */
const IDENTIFYING = ['sub', 'email', 'id', 'phone_number', 'uri', 'url', 'jti', 'assertion_id'];
/** Never searched by: an issuer is shared by every subject it issued for. */
const NOT_IDENTIFYING = new Set(['format', 'iss', 'issuer']);

/**
 * The one identifier to look a subject up by on the timeline, which matches events that carry
 * it anywhere in their subject: the most specific member, the user of a complex subject first,
 * the first of an aliases set; for a format registered by agreement, its first member that is
 * not an issuer. Undefined when there is none.
 */
export function subjectSearchTerm(subject: unknown): string | undefined {
  if (typeof subject === 'string') return subject.trim() || undefined;
  if (Array.isArray(subject)) {
    for (const item of subject) {
      const term = subjectSearchTerm(item);
      if (term) return term;
    }
    return undefined;
  }
  if (!subject || typeof subject !== 'object') return undefined;
  const s = subject as Record<string, unknown>;
  const own = IDENTIFYING.map((k) => s[k]).find((v) => typeof v === 'string' && v.trim() !== '');
  if (typeof own === 'string') return own.trim();
  for (const key of ['user', ...Object.keys(s)]) {
    if (NOT_IDENTIFYING.has(key)) continue;
    const term = subjectSearchTerm(s[key]);
    if (term) return term;
  }
  return undefined;
}
