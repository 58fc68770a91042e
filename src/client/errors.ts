import type { ErrorCode } from '../protocol/index.js';

/** Codes the client itself raises, next to the server's {@link ErrorCode}s. */
export const ClientErrorCode = {
  /** No reply to a request within the request timeout. */
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  /** The connection closed before the reply arrived. */
  CONNECTION_CLOSED: 'CONNECTION_CLOSED',
  /** Sent while disconnected with the send queue off (`maxQueuedMessages: 0`). */
  NOT_CONNECTED: 'NOT_CONNECTED',
  /** Dropped from the send queue to make room for a newer message. */
  QUEUE_OVERFLOW: 'QUEUE_OVERFLOW',
  /** `getToken()` threw or rejected. */
  TOKEN_UNAVAILABLE: 'TOKEN_UNAVAILABLE',
  /** `close()` was called. */
  CLIENT_CLOSED: 'CLIENT_CLOSED',
  /** A server message the client cannot use (a reply or announcement of the wrong shape). */
  INVALID_SERVER_MESSAGE: 'INVALID_SERVER_MESSAGE',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

export interface RealtimeClientErrorDetails {
  /** Unix seconds when a rate-limit slot frees (server RATE_LIMIT_EXCEEDED). */
  resetTime?: number;
  /** The close code, for CONNECTION_CLOSED. */
  closeCode?: number;
  /** The `id` of the request this error answers. */
  requestId?: string;
}

/** An `error` message from the server, or a failure of the client itself; `code` says which. */
export class RealtimeClientError extends Error {
  override readonly name = 'RealtimeClientError';
  readonly resetTime?: number;
  readonly closeCode?: number;
  readonly requestId?: string;

  constructor(
    readonly code: ErrorCode | ClientErrorCode | (string & {}),
    message: string,
    details: RealtimeClientErrorDetails = {},
  ) {
    super(message);
    this.resetTime = details.resetTime;
    this.closeCode = details.closeCode;
    this.requestId = details.requestId;
  }
}

/** `code reason` as the messages about a close show it. */
export function describeClose(code: number, reason: string): string {
  return reason ? `${code} ${reason}` : `${code}`;
}

/** The message of whatever was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
