/**
 * Parsing of the "wait before retrying" hints remotes send: the standard `Retry-After` header
 * (RFC 9110 §10.2.3) and vendor headers that carry an absolute epoch time instead of a delay.
 * All functions are pure: the current time is a parameter.
 */

/** A remote may not stall a delivery queue for longer than this unless the caller says so. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// RFC 9110 §5.6.7: IMF-fixdate, plus the obsolete RFC 850 and asctime forms recipients must accept.
const IMF_FIXDATE = new RegExp(`^[a-z]{3}, (\\d{2}) ([a-z]{3}) (\\d{4}) ${TIME} GMT$`, 'i');
const RFC850_DATE = new RegExp(`^[a-z]{6,9}, (\\d{2})-([a-z]{3})-(\\d{2}) ${TIME} GMT$`, 'i');
const ASCTIME_DATE = new RegExp(`^[a-z]{3} ([a-z]{3}) ( \\d|\\d{2}) ${TIME} (\\d{4})$`, 'i');
// Delay-seconds; a trailing `s` is tolerated because some vendors send `13s`.
const DELAY_SECONDS = /^(\d+(?:\.\d+)?)s?$/i;

function utcMillis(year: number, monthName: string, day: number, h: number, m: number, s: number) {
  const month = MONTHS.indexOf(monthName.toLowerCase());
  if (month < 0 || day < 1 || day > 31 || h > 23 || m > 59 || s > 60) return undefined;
  const ms = Date.UTC(year, month, day, h, m, Math.min(s, 59));
  // Date.UTC rolls 31 Feb over into March; such dates are invalid, not a later day.
  return new Date(ms).getUTCDate() === day ? ms : undefined;
}

/** RFC 850 years have two digits: pick the century that puts the date at most 50 years ahead. */
function expandTwoDigitYear(yy: number, nowMs: number): number {
  const currentYear = new Date(nowMs).getUTCFullYear();
  let year = Math.floor(currentYear / 100) * 100 + yy;
  if (year > currentYear + 50) year -= 100;
  return year;
}

/** Parses an HTTP-date in any of its three forms into epoch milliseconds. */
export function parseHttpDate(value: string, nowMs: number = Date.now()): number | undefined {
  const text = value.trim();
  let m = IMF_FIXDATE.exec(text);
  if (m) return utcMillis(Number(m[3]), m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  m = RFC850_DATE.exec(text);
  if (m) {
    const year = expandTwoDigitYear(Number(m[3]), nowMs);
    return utcMillis(year, m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  m = ASCTIME_DATE.exec(text);
  if (m) return utcMillis(Number(m[6]), m[1]!, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
  return undefined;
}

function clampDelay(ms: number, maxMs: number): number {
  return Math.min(Math.max(0, Math.ceil(ms)), Math.max(0, maxMs));
}

/**
 * `Retry-After` as delay-seconds or HTTP-date → milliseconds to wait, clamped to [0, maxMs].
 * A date in the past means "now" (0). Unparseable values give undefined, so the caller's own
 * backoff applies.
 */
export function parseRetryAfter(
  value: string | undefined | null,
  nowMs: number = Date.now(),
  maxMs: number = DEFAULT_MAX_RETRY_AFTER_MS,
): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (text.length === 0) return undefined;
  const seconds = DELAY_SECONDS.exec(text);
  if (seconds) return clampDelay(Number(seconds[1]) * 1000, maxMs);
  const at = parseHttpDate(text, nowMs);
  return at === undefined ? undefined : clampDelay(at - nowMs, maxMs);
}

/**
 * A vendor header holding the absolute time at which requests may resume, such as
 * CrowdStrike's `X-Ratelimit-Retryafter` (epoch seconds). `auto` treats values above 10^12 as
 * milliseconds, which no epoch-seconds value reaches before the year 33658.
 */
export function parseEpochRetryAfter(
  value: string | undefined | null,
  nowMs: number = Date.now(),
  maxMs: number = DEFAULT_MAX_RETRY_AFTER_MS,
  unit: 'auto' | 's' | 'ms' = 'auto',
): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (!/^\d+(?:\.\d+)?$/.test(text)) return undefined;
  const n = Number(text);
  const atMs = unit === 'ms' || (unit === 'auto' && n > 1e12) ? n : n * 1000;
  return clampDelay(atMs - nowMs, maxMs);
}

function header(headers: Record<string, string | undefined>, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return value;
  }
  return undefined;
}

/**
 * Okta's `X-Rate-Limit-Reset`: the epoch second at which its rate-limit window ends, the only
 * wait a 429 from Okta names, at its APIs and its token endpoints alike. Only a 429's is a wait:
 * Okta sends the header with every answer. A value below 10^9 (a time before 2001) is not an
 * epoch time but a count of seconds some other servers send under that name, and is not guessed
 * at: undefined, so the caller's own backoff applies.
 */
export function parseRateLimitReset(
  value: string | undefined | null,
  nowMs: number = Date.now(),
  maxMs: number = DEFAULT_MAX_RETRY_AFTER_MS,
): number | undefined {
  // Number() of anything but digits is NaN or out of range here; parseEpochRetryAfter checks the form.
  return Number(value?.trim()) >= 1e9 ? parseEpochRetryAfter(value, nowMs, maxMs, 'auto') : undefined;
}

/**
 * The delay a response asks for: the standard `Retry-After` first, then the epoch-time
 * `X-Ratelimit-Retryafter` some vendors send instead, and for a 429 (`status`) the end of the
 * rate-limit window in `X-Rate-Limit-Reset` (Okta).
 */
export function retryAfterFromHeaders(
  headers: Record<string, string | undefined>,
  nowMs: number = Date.now(),
  maxMs: number = DEFAULT_MAX_RETRY_AFTER_MS,
  status?: number,
): number | undefined {
  return (
    parseRetryAfter(header(headers, 'retry-after'), nowMs, maxMs) ??
    parseEpochRetryAfter(header(headers, 'x-ratelimit-retryafter'), nowMs, maxMs) ??
    (status === 429 ? parseRateLimitReset(header(headers, 'x-rate-limit-reset'), nowMs, maxMs) : undefined)
  );
}
