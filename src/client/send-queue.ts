/**
 * A FIFO with a fixed capacity that drops its oldest entry to make room: for sends made while
 * disconnected, the newest state matters more than the oldest. A capacity of 0 holds nothing.
 */
export class BoundedQueue<T> {
  private readonly items: T[] = [];

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.length;
  }

  /** Adds `item`; returns the entries dropped to make room (or `item` itself at capacity 0). */
  push(item: T): T[] {
    if (this.capacity <= 0) return [item];
    this.items.push(item);
    const overflow = this.items.length - this.capacity;
    return overflow > 0 ? this.items.splice(0, overflow) : [];
  }

  /** Removes and returns every entry, oldest first. */
  drain(): T[] {
    return this.items.splice(0, this.items.length);
  }

  /** Removes one entry (a queued request that timed out); true when it was there. */
  remove(item: T): boolean {
    const index = this.items.indexOf(item);
    if (index < 0) return false;
    this.items.splice(index, 1);
    return true;
  }
}
