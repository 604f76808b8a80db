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

function logout(): void {
  setToken(null);
  session = null;
  location.hash = '#/login';
  void render();
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
          location.hash = '#/dashboard';
          await render();
        } catch (err) {
          setToken(null);
          error.textContent =
            err instanceof ApiError && err.status === 401 ? 'That is not an admin token.' : String(err);
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

async function render(): Promise<void> {
  const { page, arg, params } = route();
  if (!token()) {
    renderNav('');
    app.replaceChildren(loginPage());
    return;
  }
  if (!session) {
    try {
      session = await api<Session>('/session');
    } catch {
      setToken(null);
      renderNav('');
      app.replaceChildren(loginPage('Your session ended; sign in again.'));
      return;
    }
  }
  renderNav(page);
  // Own pages only: `#/constructor` or `#/__proto__` name no page (they are Object's).
  const build = (Object.hasOwn(PAGES, page) ? PAGES[page] : undefined) ?? PAGES.dashboard!;
  const ctx: PageContext = { session, arg, params, rerender: () => void render() };
  app.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  try {
    app.replaceChildren(await build(ctx));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return logout();
    app.replaceChildren(h('p', { class: 'error', 'data-test': 'page-error' }, (err as Error).message));
  }
}

window.addEventListener('hashchange', () => void render());
void render();
