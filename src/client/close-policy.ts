import { CloseCode } from '../protocol/index.js';

/**
 * What to do after the server (or the network) ended the connection:
 * - `reconnect`: a transient condition (restart, timeout, overload, network loss);
 * - `reconnect-with-new-token`: the token was refused; retrying the same token cannot succeed,
 *   so reconnect only when `getToken()` yields a different one;
 * - `stop`: retrying would be refused again or would undo a decision (admin kick, eviction by a
 *   newer connection of the same user, forbidden origin, normal close).
 */
export type CloseDecision = 'reconnect' | 'reconnect-with-new-token' | 'stop';

const STOP_CODES: ReadonlySet<number> = new Set([
  CloseCode.NORMAL,
  CloseCode.FORBIDDEN_ORIGIN,
  CloseCode.DISCONNECTED_BY_ADMIN,
  CloseCode.CONNECTION_LIMIT_EXCEEDED,
]);

/**
 * Decision for a close code. Codes not named by the protocol (1005 "no status", 1006 "abnormal
 * closure" from a lost network, 1002/1007/1008/1009, anything unknown) reconnect: backoff bounds
 * the cost, and giving up on an unknown code would leave a client silently offline.
 */
export function closeDecision(code: number): CloseDecision {
  if (STOP_CODES.has(code)) return 'stop';
  if (code === CloseCode.UNAUTHORIZED) return 'reconnect-with-new-token';
  return 'reconnect';
}
