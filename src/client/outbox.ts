import type { ConnectionState } from './connection-state.js';
import { ClientErrorCode, RealtimeClientError } from './errors.js';
import { BoundedQueue } from './send-queue.js';

/** What to tell a sender once its frame leaves the outbox. */
export interface SendCallbacks {
  onSent: () => void;
  onDropped: (error: RealtimeClientError) => void;
}

/** A frame waiting in the send queue. */
export interface QueuedSend extends SendCallbacks {
  frame: string;
}

/**
 * Writes frames now when the connection is open, keeps them while (re)connecting when the queue
 * is on (`maxQueuedMessages`), and refuses them otherwise.
 */
export class Outbox {
  private readonly queue: BoundedQueue<QueuedSend>;

  constructor(
    capacity: number,
    private readonly write: (frame: string) => boolean,
    private readonly state: () => ConnectionState,
  ) {
    this.queue = new BoundedQueue(capacity);
  }

  /** Returns the queued entry, when the frame had to wait. */
  dispatch(frame: string, callbacks: SendCallbacks): QueuedSend | undefined {
    const state = this.state();
    if (state === 'open' && this.write(frame)) {
      callbacks.onSent();
      return undefined;
    }
    const item: QueuedSend = { frame, ...callbacks };
    if (state === 'closed' || this.queue.capacity <= 0) {
      item.onDropped(
        new RealtimeClientError(ClientErrorCode.NOT_CONNECTED, `Not connected (${state})`),
      );
      return undefined;
    }
    for (const dropped of this.queue.push(item)) {
      dropped.onDropped(
        new RealtimeClientError(
          ClientErrorCode.QUEUE_OVERFLOW,
          `Dropped from the send queue (over ${this.queue.capacity} messages)`,
        ),
      );
    }
    return item;
  }

  /** Takes back a queued frame (its request timed out before it could be sent). */
  remove(item: QueuedSend): void {
    this.queue.remove(item);
  }

  /** Writes every queued frame, oldest first, once the connection is open. */
  flush(): void {
    for (const item of this.queue.drain()) {
      if (this.write(item.frame)) item.onSent();
      else
        item.onDropped(
          new RealtimeClientError(ClientErrorCode.CONNECTION_CLOSED, 'Connection lost'),
        );
    }
  }

  rejectAll(makeError: () => RealtimeClientError): void {
    for (const item of this.queue.drain()) item.onDropped(makeError());
  }
}
