import { PermanentError } from './errors.ts';

export interface SameOriginLinkOptions {
  /** The error's code; `SSF_ERR_FOREIGN_LINK` unless given. */
  code?: string;
  /**
   * The error's message. `origin` is the foreign origin the link leads to, or undefined when the
   * link is not a URL at all; `link` is the link as received.
   */
  message?: (origin: string | undefined, link: string) => string;
}

function defaultMessage(origin: string | undefined, link: string): string {
  return origin === undefined
    ? `a next link that is not a URL (${JSON.stringify(link)}) is not followed`
    : `a next link to another origin (${origin}) is not followed, and no credential is sent there`;
}

/**
 * A paging link (an `@odata.nextLink`, a Link header's `rel="next"`, a cursor URL), resolved
 * against `base` as a browser would (relative links, and protocol-relative `//host/…` ones,
 * take the base's scheme), once it is known to stay on the base's origin: same scheme, host and
 * port. A client that sends its bearer token or API key with every request follows such links
 * only through this, so the credential never travels to another host. A link to another origin
 * (`http:` where the base is `https:` included), or one that is no URL, is refused with a
 * PermanentError naming the foreign origin: the remote would send the same link again.
 */
export function sameOriginLink(link: string, base: string | URL, options: SameOriginLinkOptions = {}): URL {
  const expected = new URL(base).origin;
  let target: URL | undefined;
  try {
    target = new URL(link, base);
  } catch {
    target = undefined;
  }
  if (target === undefined || target.origin !== expected) {
    throw new PermanentError((options.message ?? defaultMessage)(target?.origin, link), {
      code: options.code ?? 'SSF_ERR_FOREIGN_LINK',
    });
  }
  return target;
}
