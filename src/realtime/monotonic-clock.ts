/**
 * Epoch milliseconds that only move forward (`performance.timeOrigin + performance.now()`). A
 * connection's own times (connectedAt, lastActivity, lastHeartbeat, nextPingAt) are on this
 * scale, so that a step of the wall clock neither closes every connection for idleness (forward)
 * nor keeps dead ones open until it catches up (backward). Read as a date (the admin API), it is
 * the wall-clock time of the process's start plus the time elapsed since.
 */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}
