import { ApiError, api, setToken, token, type Session } from './api.ts';
import { h } from './dom.ts';
import { PAGES, type PageContext } from './pages.ts';

const app = document.getElementById('app') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const who = document.getElementById('who') as HTMLElement;
let session: Session | null = null;

const NAV: Array<[string, string]> = [
  ['dashboard', 'Dashboard'],
  ['timeline', 'Subject timeline'],
  ['events', 'Events'],
  ['deliveries', 'Deliveries'],
  ['dead-letters', 'Dead letters'],
  ['streams', 'Streams'],
  ['keys', 'Keys'],
  ['audit', 'Audit log'],
];

/** An argument of a hand-edited link may not decode (`%E0%A4%A`): it is then taken as written. */
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `#/page/arg?x=y` → page, argument and query. */
function route(): { page: string; arg: string | undefined; params: URLSearchParams } {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path = '', search = ''] = hash.split('?');
  const [page = 'dashboard', arg] = path.split('/');
  return {
    page: page || 'dashboard',
    arg: arg ? decoded(arg) : undefined,
    params: new URLSearchParams(search),
  };
}

function renderNav(current: string): void {
  nav.replaceChildren(
    ...NAV.map(([id, label]) => h('a', { href: `#/${id}`, class: id === current ? 'active' : '' }, label)),
  );
  who.replaceChildren(
    session
      ? h(
          'span',
          {},
          `${session.name} (${session.role}) `,
          h('button', { type: 'button', 'data-test': 'logout', onclick: logout }, 'Log out'),
        )
      : '',
  );
}

/**
 * Goes to `hash`. Setting a different hash renders through `hashchange`; rendering here as well
 * would load the page twice. The same hash fires no event, so that case renders here.
 */
function navigate(hash: string): void {
  if (location.hash === hash) void render();
  else location.hash = hash;
}

function logout(): void {
  setToken(null);
  session = null;
  navigate('#/login');
}

function loginPage(message?: string): HTMLElement {
  const input = h('input', {
    type: 'password',
    id: 'token',
    autocomplete: 'off',
    placeholder: 'admin token',
    'aria-label': 'admin token',
  }) as HTMLInputElement;
  const error = h('p', { class: 'error', 'data-test': 'login-error' }, message ?? '');
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: async (event: Event) => {
        event.preventDefault();
        setToken(input.value.trim());
        try {
          session = await api<Session>('/session');
          navigate('#/dashboard');
        } catch (err) {
          setToken(null);
          error.textContent =
            err instanceof ApiError && err.status === 401
              ? 'That is not an admin token.'
              : (err as Error).message;
        }
      },
    },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an admin token from the bridge configuration (admin.tokens).'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  return form;
}

/** An error the operator can act on: the message, and a button that loads the page again. */
function errorWithRetry(message: string): HTMLElement {
  return h(
    'div',
    { role: 'alert' },
    h('p', { class: 'error', 'data-test': 'page-error' }, message),
    h('button', { type: 'button', 'data-test': 'retry', onclick: () => void render() }, 'Try again'),
  );
}

/**
 * After a render the focused element is gone (nav and page are rebuilt), so focus would fall to
 * <body>: it goes to the page heading instead, where a screen reader starts reading. Focus the
 * operator already moved elsewhere is left alone.
 */
function focusHeading(): void {
  if (document.activeElement && document.activeElement !== document.body) return;
  const heading = app.querySelector<HTMLElement>('h1') ?? app.querySelector<HTMLElement>('[role=alert]');
  if (!heading) return;
  heading.tabIndex = -1;
  heading.focus();
}

/** Renders of the page are numbered; one that finishes after a newer one has started is dropped. */
let renderSeq = 0;

/** A notice for the next render only (see PageContext.notice). */
let pendingNotice: string | undefined;

async function render(): Promise<void> {
  const seq = ++renderSeq;
  const stale = () => seq !== renderSeq;
  const notice = pendingNotice;
  pendingNotice = undefined;
  const { page, arg, params } = route();
  if (!token()) {
    renderNav('');
    app.replaceChildren(loginPage());
    return focusHeading();
  }
  if (!session) {
    let got: Session;
    try {
      got = await api<Session>('/session');
    } catch (err) {
      if (stale()) return;
      renderNav('');
      // Only a refused token ends the session; a bridge or proxy that failed keeps it for a retry.
      if (err instanceof ApiError && err.status === 401) {
        setToken(null);
        app.replaceChildren(loginPage('Your session ended; sign in again.'));
      } else {
        app.replaceChildren(errorWithRetry(`Could not reach the admin API: ${(err as Error).message}`));
      }
      return focusHeading();
    }
    if (stale()) return;
    session = got;
  }
  renderNav(page);
  // Own pages only: `#/constructor` or `#/__proto__` name no page (they are Object's).
  const build = (Object.hasOwn(PAGES, page) ? PAGES[page] : undefined) ?? PAGES.dashboard!;
  const ctx: PageContext = {
    session,
    arg,
    params,
    notice,
    // Only while the page is still the one shown: a refresh due after the operator moved on
    // (the dead letters' delayed one) would render the page they went to a second time.
    rerender: (next) => {
      if (seq !== renderSeq) return;
      pendingNotice = next;
      void render();
    },
  };
  app.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  try {
    const built = await build(ctx);
    if (stale()) return;
    app.replaceChildren(built);
  } catch (err) {
    if (stale()) return;
    if (err instanceof ApiError && err.status === 401) return logout();
    app.replaceChildren(errorWithRetry((err as Error).message));
  }
  focusHeading();
}

window.addEventListener('hashchange', () => void render());
void render();
