interface InFlight<T> {
  item: T;
  /** Confirmed sent, or moved back to the queue: its own outcome no longer matters. */
  settled: boolean;
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
    private readonly drained: () => void = () => undefined,
    private readonly maxInFlight: number = MAX_IN_FLIGHT,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  /** False when a publish could be neither sent now nor kept. */
  canAccept(connected: boolean): boolean {
    const sendNow =
      connected && this.pending.length === 0 && this.inFlight.length < this.maxInFlight;
    return sendNow || this.pending.length < this.limit;
  }

  /** Sends now when nothing is waiting and few are in flight, else queues behind what is. */
  push(item: T, connected: boolean): void {
    const full = this.inFlight.length >= this.maxInFlight;
    if (!connected || this.pending.length > 0 || this.flushing || full) {
      this.pending.push(item);
      return;
    }
    const entry: InFlight<T> = { item, settled: false };
    this.inFlight.push(entry);
    this.send(item).then(
      () => {
        entry.settled = true;
        while (this.inFlight[0]?.settled) this.inFlight.shift();
        // Flushed only once none is in flight: a failure then cannot requeue ahead of a flush.
        if (this.inFlight.length === 0 && this.pending.length > 0) this.drained();
      },
      () => {
        if (!entry.settled) this.requeueInFlight();
      },
    );
  }

  /** Sends what was kept, oldest first; stops at the first failure and keeps the rest. */
  async flush(): Promise<number> {
    if (this.flushing) return 0;
    this.flushing = true;
    let sent = 0;
    try {
      while (this.pending.length > 0) {
        await this.send(this.pending[0]!);
        this.pending.shift();
        sent++;
      }
    } catch {
      // Redis went away again: the rest waits for the next flush.
    } finally {
      this.flushing = false;
    }
    return sent;
  }

  /**
   * On the first failure, every unconfirmed publish goes back to the front of the queue, in the
   * order it was made. Failures do not arrive in order (a publish refused at once can fail before
   * older ones still in flight), so requeueing each on its own failure would reorder them. One
   * that had in fact reached Redis is then sent twice; receivers drop it by message id. The queue
   * then holds at most `maxInFlight + limit`, and refuses new publishes until it is below `limit`.
   */
  private requeueInFlight(): void {
    const unconfirmed = this.inFlight.filter((entry) => !entry.settled);
    for (const entry of unconfirmed) entry.settled = true;
    this.inFlight = [];
    this.pending.unshift(...unconfirmed.map((entry) => entry.item));
  }
}
