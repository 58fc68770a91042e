/** Bounds of the reconnect delay, in milliseconds. */
export interface BackoffRange {
  minDelayMs: number;
  maxDelayMs: number;
}

/**
 * Delay before reconnect attempt `attempt` (0 for the first), "full jitter" style: a uniform
 * draw between `minDelayMs` and an exponentially growing cap (`minDelayMs * 2^(attempt + 1)`,
 * never above `maxDelayMs`). The jitter spreads the reconnects of many clients after a server
 * restart, so they do not all arrive in the same instant; the first attempt is jittered too
 * (0.5 s to 1 s by default), as that is the one every client makes at once.
 *
 * Pure: `random` (a value in [0, 1)) is a parameter so that tests can pin it.
 */
export function reconnectDelayMs(
  attempt: number,
  range: BackoffRange,
  random: () => number = Math.random,
): number {
  const min = Math.max(0, range.minDelayMs);
  const max = Math.max(min, range.maxDelayMs);
  // Capping the exponent keeps 2 ** exponent finite for very long outages.
  const exponent = Math.min(Math.max(0, Math.floor(attempt)) + 1, 31);
  const cap = Math.min(max, min * 2 ** exponent);
  const draw = Math.min(Math.max(random(), 0), 1);
  return Math.round(min + (cap - min) * draw);
}
