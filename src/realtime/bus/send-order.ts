interface Entry {
  /** A stream copy whose local delivery is done, or a send waiting behind such copies. */
  done: boolean;
  /** The local delivery of a send without a stream, run when its turn comes. */
  run?: () => void;
}

/**
 * Keeps one instance's sends in the order they were issued on this instance's connections. A
 * stream copy is delivered here once its history append (or its trip through Redis) is done; a
 * send without a stream issued while one is pending is delivered right after it, synchronously,
 * not before. With nothing pending, a send is delivered at once: no queue, no promise.
 */
export class SendOrder {
  private entries: Entry[] = [];
  private head = 0;

  /** True when no stream copy is pending: a send is delivered now. */
  get idle(): boolean {
    return this.head === this.entries.length;
  }

  /** A stream copy was issued; call the function returned once it was delivered here (or never will be). */
  begin(): () => void {
    const entry: Entry = { done: false };
    this.entries.push(entry);
    return () => {
      if (entry.done) return;
      entry.done = true;
      this.drain();
    };
  }

  /** Runs `deliver` once every stream copy issued before is delivered; resolves to its count. */
  after(deliver: () => number): Promise<number> {
    return new Promise((resolve, reject) => {
      const run = () => {
        try {
          resolve(deliver());
        } catch (error) {
          reject(error);
        }
      };
      this.entries.push({ done: true, run });
      this.drain();
    });
  }

  private drain(): void {
    while (this.head < this.entries.length && this.entries[this.head]!.done) {
      const entry = this.entries[this.head]!;
      this.entries[this.head++] = DRAINED;
      entry.run?.();
    }
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}

const DRAINED: Entry = { done: true };
