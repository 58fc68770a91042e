import type { ErrorData, ServerEnvelope } from '../protocol/index.js';
import { ClientErrorCode, RealtimeClientError } from './errors.js';

interface PendingRequest {
  type: string;
  resolve: (reply: ServerEnvelope) => void;
  reject: (error: RealtimeClientError) => void;
  timer: ReturnType<typeof setTimeout>;
  /** False while the request waits in the send queue: a close does not concern it yet. */
  sent: boolean;
}

/**
 * Requests waiting for the reply that carries their `id` in `in_reply_to`. Each one has its own
 * timeout so that a lost reply cannot keep a caller waiting forever.
 */
export class RequestTracker {
  private readonly pending = new Map<string, PendingRequest>();

  get size(): number {
    return this.pending.size;
  }

  has(id: string): boolean {
    return this.pending.has(id);
  }

  /** Waits for the reply to `id`; `onTimeout` runs (after the rejection) to undo side effects. */
  track(
    id: string,
    type: string,
    timeoutMs: number,
    onTimeout?: () => void,
  ): Promise<ServerEnvelope> {
    return new Promise<ServerEnvelope>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new RealtimeClientError(
            ClientErrorCode.REQUEST_TIMEOUT,
            `No reply to ${type} within ${timeoutMs} ms`,
            { requestId: id },
          ),
        );
        onTimeout?.();
      }, timeoutMs);
      this.pending.set(id, { type, resolve, reject, timer, sent: false });
    });
  }

  /** Records that the request went out on the current connection. */
  markSent(id: string): void {
    const request = this.pending.get(id);
    if (request) request.sent = true;
  }

  /**
   * Settles the request `envelope` answers: an `error` reply rejects, anything else resolves.
   * Returns false when no request is waiting for it (not a reply, or one that already timed out).
   */
  settle(envelope: ServerEnvelope): boolean {
    const id = envelope.in_reply_to;
    if (id === undefined) return false;
    const request = this.pending.get(id);
    if (!request) return false;
    this.pending.delete(id);
    clearTimeout(request.timer);
    if (envelope.type === 'error') {
      const data = envelope.data as Partial<ErrorData>;
      request.reject(
        new RealtimeClientError(
          typeof data.code === 'string' ? data.code : 'UNKNOWN_ERROR',
          typeof data.message === 'string' ? data.message : `${request.type} failed`,
          { requestId: id, resetTime: data.reset_time },
        ),
      );
    } else {
      request.resolve(envelope);
    }
    return true;
  }

  /** Rejects one request (for example when it was dropped from the send queue). */
  reject(id: string, error: RealtimeClientError): void {
    const request = this.pending.get(id);
    if (!request) return;
    this.pending.delete(id);
    clearTimeout(request.timer);
    request.reject(error);
  }

  /**
   * Rejects the requests that were sent (`onlySent`: the connection that carried them closed, so
   * their replies can never come) or all of them (the client was closed), clearing their timers.
   */
  rejectAll(makeError: (id: string, type: string) => RealtimeClientError, onlySent = false): void {
    const entries = [...this.pending].filter(([, request]) => !onlySent || request.sent);
    for (const [id, request] of entries) {
      this.pending.delete(id);
      clearTimeout(request.timer);
      request.reject(makeError(id, request.type));
    }
  }
}
