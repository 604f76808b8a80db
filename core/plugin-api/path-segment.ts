import { PermanentError } from './errors.ts';

/**
 * `value` as one segment of a URL path: escaped as `encodeURIComponent` does, but with "@", "+"
 * and the other sub-delimiters kept (RFC 3986 §3.3; servers that compare the path with a signed
 * copy, such as a DPoP proof's `htu`, see it as sent). An id that is empty, `.` or `..` (also
 * escaped as `%2E`) is refused with a PermanentError: URL parsers resolve it as a dot-segment
 * (RFC 3986 §5.2.4), so `/users/../` would address the collection instead of a user.
 * `escapeAll` escapes the sub-delimiters too, as `encodeURIComponent` does.
 */
export function pathSegment(value: string, options: { escapeAll?: boolean } = {}): string {
  if (value === '' || /^(\.|%2e){1,2}$/i.test(value)) {
    throw new PermanentError(`"${value}" is not an id that can name a resource in a URL path`, {
      code: 'SSF_ERR_OUTBOUND_SUBJECT',
    });
  }
  const escaped = encodeURIComponent(value);
  if (options.escapeAll) return escaped;
  return escaped.replace(/%(40|2B|24|26|2C|3B|3D|3A)/g, (kept) => decodeURIComponent(kept));
}
