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
