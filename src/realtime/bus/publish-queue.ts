interface InFlight<T> {
  /** Confirmed sent, or moved back to the queue: its own outcome no longer matters. */
  settled: boolean;
  /** What goes back to the queue on a failure; none for a send its caller made (sendCounted). */
  queued?: { item: T };
}

export interface PublishQueueHooks {
  /** Called once publishes held back by a full window of them in flight may go out. */
  drained?: () => void;
  /**
   * Called when a send failed and what it was, and what came after it, went back to the queue:
   * nothing sends it again until the next {@link PublishQueue.flush}.
   */
  failed?: (error: unknown) => void;
}

/** 10,000 unconfirmed 1 KB publishes hold about 10 MB; a burst of thousands still goes out. */
export const MAX_IN_FLIGHT = 10_000;

/**
 * Publishes in order, keeping those made while Redis is unreachable (at most `limit`) and
 * sending them, still in order, once it is back. While Redis is slow, at most `maxInFlight` are
 * sent unconfirmed; those after wait in the same queue, which `drained` announces once they are
 * all confirmed.
 */
export class PublishQueue<T> {
  private readonly pending: T[] = [];
  /** Sent but not yet confirmed, oldest first. */
  private inFlight: Array<InFlight<T>> = [];
  private flushing = false;

  constructor(
    private readonly send: (item: T) => Promise<unknown>,
    private readonly limit: number,
    private readonly hooks: PublishQueueHooks = {},
    private readonly maxInFlight: number = MAX_IN_FLIGHT,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  /** The publish that goes out next. */
  get head(): T | undefined {
    return this.pending[0];
  }

  /** Gives up on the publish that goes out next; not during a flush, which is sending it. */
  dropHead(): T | undefined {
    return this.flushing ? undefined : this.pending.shift();
  }

  /** True when a publish made now goes out at once: nothing waits and the window has room. */
  canSendNow(connected: boolean): boolean {
    return (
      connected &&
      this.pending.length === 0 &&
      !this.flushing &&
      this.inFlight.length < this.maxInFlight
    );
  }

  /** False when a publish could be neither sent now nor kept. */
  canAccept(connected: boolean): boolean {
    return this.canSendNow(connected) || this.pending.length < this.limit;
  }

  /** Sends now when nothing is waiting and few are in flight, else queues behind what is. */
  push(item: T, connected: boolean): void {
    if (!this.canSendNow(connected)) {
      this.pending.push(item);
      return;
    }
    const entry: InFlight<T> = { settled: false, queued: { item } };
    this.inFlight.push(entry);
    this.send(item).then(
      () => {
        entry.settled = true;
        this.release();
      },
      (error: unknown) => {
        if (entry.settled) return;
        this.requeueInFlight();
        this.hooks.failed?.(error);
      },
    );
  }

  /**
   * Sends at once, counted in the same window, a publish whose caller falls back by itself when
   * it fails (a stream copy, which is delivered here first and queued then, see RedisBus): its
   * failure requeues nothing. Ask {@link canSendNow} first.
   */
  sendCounted<R>(send: () => Promise<R>): Promise<R> {
    const sent = send();
    const entry: InFlight<T> = { settled: false };
    this.inFlight.push(entry);
    const settle = () => {
      entry.settled = true;
      this.release();
    };
    sent.then(settle, settle);
    return sent;
  }

  /** Sends what was kept, oldest first; stops at the first failure and keeps the rest. */
  async flush(): Promise<number> {
    if (this.flushing) return 0;
    this.flushing = true;
    let sent = 0;
    let failure: { error: unknown } | undefined;
    try {
      while (this.pending.length > 0) {
        await this.send(this.pending[0]!);
        this.pending.shift();
        sent++;
      }
    } catch (error) {
      // The rest waits for the next flush.
      failure = { error };
    } finally {
      this.flushing = false;
    }
    if (failure) this.hooks.failed?.(failure.error);
    return sent;
  }

  /** Frees the window up to the oldest unconfirmed publish. */
  private release(): void {
    while (this.inFlight[0]?.settled) this.inFlight.shift();
    // Flushed only once none is in flight: a failure then cannot requeue ahead of a flush.
    if (this.inFlight.length === 0 && this.pending.length > 0) this.hooks.drained?.();
  }

  /**
   * On the first failure, every unconfirmed publish goes back to the front of the queue, in the
   * order it was made. Failures do not arrive in order (a publish refused at once can fail before
   * older ones still in flight), so requeueing each on its own failure would reorder them. One
   * that had in fact reached Redis is then sent twice; receivers drop it by message id. The queue
   * then holds at most `maxInFlight + limit`, and refuses new publishes until it is below `limit`.
   * Counted sends stay in the window until their own outcome: their callers fall back.
   */
  private requeueInFlight(): void {
    const unconfirmed = this.inFlight.filter((entry) => !entry.settled);
    const requeued: T[] = [];
    for (const entry of unconfirmed) {
      if (!entry.queued) continue;
      entry.settled = true;
      requeued.push(entry.queued.item);
    }
    this.inFlight = unconfirmed.filter((entry) => !entry.settled);
    this.pending.unshift(...requeued);
  }
}
