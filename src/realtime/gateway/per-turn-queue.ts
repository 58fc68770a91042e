/**
 * Work that would stall the event loop if done in one go (a ping or a close per connection, for
 * thousands of connections): items are handled `perTurn` at a time, one batch per turn of the
 * event loop (`setImmediate`), so that messages are read and answered in between.
 */
export class PerTurnQueue<T> {
  private items: T[] = [];
  private head = 0;
  private scheduled = false;

  constructor(
    private readonly perTurn: number,
    private readonly handle: (item: T) => void,
  ) {}

  /** Queues the items and handles the first batch now, unless a drain is under way. */
  push(items: readonly T[]): void {
    if (items.length === 0) return;
    for (const item of items) this.items.push(item);
    if (!this.scheduled) this.drain();
  }

  /** Forgets what is queued (shutdown). */
  clear(): void {
    this.items = [];
    this.head = 0;
  }

  private readonly drain = (): void => {
    // Set first: an item handled here that queues more must not start a second drain.
    this.scheduled = true;
    const items = this.items;
    const end = Math.min(items.length, this.head + this.perTurn);
    try {
      // The index moves before each call: an item that throws is not handled again.
      while (this.head < end && items === this.items) this.handle(items[this.head++]!);
    } finally {
      if (this.head < this.items.length) setImmediate(this.drain);
      else {
        this.scheduled = false;
        this.clear();
      }
    }
  };
}
