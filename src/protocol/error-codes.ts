/** Codes carried in `error` messages (PROTOCOL.md section 6). */
export const ErrorCode = {
  INVALID_MESSAGE_FORMAT: 'INVALID_MESSAGE_FORMAT',
  INVALID_MESSAGE_TYPE: 'INVALID_MESSAGE_TYPE',
  RATE_LIMIT_EXCEEDED: 'RATE_LIMIT_EXCEEDED',
  SUBSCRIPTION_FAILED: 'SUBSCRIPTION_FAILED',
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  CONNECTION_LIMIT_EXCEEDED: 'CONNECTION_LIMIT_EXCEEDED',
  INTERNAL_ERROR: 'INTERNAL_ERROR',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Payload of an `error` message. */
export interface ErrorData {
  /** One of {@link ErrorCode}, or a code a host handler defined. */
  code: ErrorCode | (string & {});
  message: string;
  /** Unix seconds when a rate-limit slot frees (RATE_LIMIT_EXCEEDED only). */
  reset_time?: number;
}
