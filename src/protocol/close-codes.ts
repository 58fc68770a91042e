/** WebSocket close codes of the wire contract (PROTOCOL.md section 2). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
  CONNECTION_TIMEOUT: 4000,
  UNAUTHORIZED: 4001,
  FORBIDDEN_ORIGIN: 4003,
  DISCONNECTED_BY_ADMIN: 4004,
  CONNECTION_LIMIT_EXCEEDED: 4008,
  SLOW_CONSUMER: 4010,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Reason texts sent with each close code; clients may show them to people. */
export const CloseReason = {
  NORMAL: 'Normal closure',
  GOING_AWAY: 'Going away',
  POLICY_VIOLATION: 'Policy violation',
  MESSAGE_TOO_BIG: 'Message too big',
  INTERNAL_ERROR: 'Internal error',
  TRY_AGAIN_LATER: 'Try again later',
  CONNECTION_TIMEOUT: 'Connection timeout',
  UNAUTHORIZED: 'Unauthorized',
  TOKEN_EXPIRED: 'Token expired',
  FORBIDDEN_ORIGIN: 'Forbidden origin',
  DISCONNECTED_BY_ADMIN: 'Disconnected by admin',
  CONNECTION_LIMIT_EXCEEDED: 'Connection limit exceeded',
  SLOW_CONSUMER: 'Slow consumer',
} as const;

/** RFC 6455 section 7.4: the codes an endpoint may send (1004-1006 and 1015 are reserved). */
function isSendableCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/** A close frame's payload holds 2 bytes of code and at most 123 bytes of UTF-8 reason. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Why a close with `code` and `reason` cannot be sent (ws would throw, and the socket would be
 * dropped without a close frame), or undefined when it can.
 */
export function closeProblem(code: unknown, reason: unknown): string | undefined {
  if (typeof code !== 'number' || !Number.isInteger(code) || !isSendableCloseCode(code)) {
    return `close code must be 1000-1003, 1007-1014 or 3000-4999, got ${String(code)}`;
  }
  if (typeof reason !== 'string') return `close reason must be a string, got ${typeof reason}`;
  const bytes = new TextEncoder().encode(reason).length;
  if (bytes > MAX_CLOSE_REASON_BYTES) {
    return `close reason must be at most ${MAX_CLOSE_REASON_BYTES} bytes in UTF-8, got ${bytes}`;
  }
  return undefined;
}
