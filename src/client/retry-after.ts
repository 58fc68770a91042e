/**
 * Longest wait a `Retry-After` can impose: past it the header is taken as broken (or hostile),
 * and a client kept offline for hours by one response would be worse than one more refusal.
 */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** Statuses whose `Retry-After` says when to try again (RFC 9110, RFC 6585). */
const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/**
 * How long a refused upgrade asks the client to wait, in ms (at most
 * {@link MAX_RETRY_AFTER_MS}), or undefined when the response says nothing usable. The header is
 * either whole seconds or an HTTP date.
 */
export function retryAfterMs(
  statusCode: number | undefined,
  header: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  if (statusCode === undefined || !RETRY_STATUSES.has(statusCode)) return undefined;
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  let waitMs: number;
  if (/^\d+$/.test(value)) {
    waitMs = Number(value) * 1000;
  } else {
    // Every HTTP date starts with the day's name; Date.parse alone takes "-5" for a year.
    const at = /^[A-Za-z]{3}/.test(value) ? Date.parse(value) : Number.NaN;
    if (!Number.isFinite(at)) return undefined;
    waitMs = Math.max(0, at - now);
  }
  return Math.min(waitMs, MAX_RETRY_AFTER_MS);
}
