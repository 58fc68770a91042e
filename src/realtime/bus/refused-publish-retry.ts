import type { Logger } from '@nestjs/common';
import { RETRY_FIRST_MS, RetryBackoff } from '../retry-backoff.js';
import type { PublishQueue } from './publish-queue.js';
import { isErrorReply } from './redis-connections.js';

/**
 * A publish that fails while Redis is reachable was refused: an error reply (out of memory, a
 * script or a channel denied to the bus's user, a key of another type where a stream goes). It
 * went back to the head of the queue, and every later publish of this instance waits behind it;
 * no reconnection comes to flush them. So the queue is flushed again after 1 s, doubling, 6 times
 * (about a minute in all); refused still, that publish is dropped, with an error logged, and the
 * ones behind it go.
 */
export class RefusedPublishRetry<T> {
  private readonly retries: RetryBackoff;
  /** The publish the retries are for: a new one at the head counts afresh. */
  private refusedHead: T | undefined;

  constructor(
    private readonly queue: PublishQueue<T>,
    /** True while the publishing connection is ready: an error reply then was a refusal. */
    private readonly reachable: () => boolean,
    private readonly logger: Logger,
    /** What the logs say of a publish: ids and types, never its data. */
    private readonly describe: (item: T) => Record<string, unknown>,
    firstRetryMs = RETRY_FIRST_MS,
  ) {
    this.retries = new RetryBackoff(() => {
      if (this.reachable()) void this.queue.flush();
    }, firstRetryMs);
  }

  /** A send of the queue failed (its hook). */
  failed(error: unknown): void {
    // A connection that failed, not a refusal: the reconnection flushes the queue.
    if (!this.reachable() || !isErrorReply(error)) return;
    const head = this.queue.head;
    if (head === undefined) return;
    if (head !== this.refusedHead) {
      this.refusedHead = head;
      this.retries.reset();
      this.logger.warn({
        event: 'bus.publish_refused',
        ...this.describe(head),
        waiting: this.queue.size,
        error: String(error),
      });
    }
    if (!this.retries.spent) return this.retries.schedule();
    if (this.queue.dropHead() === undefined) return;
    this.refusedHead = undefined;
    this.logger.error({
      event: 'bus.publish_dropped',
      ...this.describe(head),
      waiting: this.queue.size,
      error: String(error),
    });
    void this.queue.flush();
  }

  /** A reconnection: its own flush comes next, and a refusal after it counts afresh. */
  reconnected(): void {
    this.refusedHead = undefined;
    this.retries.reset();
  }

  stop(): void {
    this.retries.stop();
  }
}
