/** Keys tracked at once; past it the one whose window started first is forgotten. */
export const MAX_TRACKED_KEYS = 10_000;

interface Window {
  startedAt: number;
  count: number;
}

/**
 * Counts events per key (an address, a user) in a fixed window that starts with the key's first
 * event. Memory is bounded: windows are kept in the order they started, which lets expired ones
 * go from the front, and at most `maxTracked` are kept.
 */
export class KeyedWindowCounter {
  private readonly windows = new Map<string, Window>();

  /** `limit` 0 turns the counting off: everything is admitted. */
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly maxTracked = MAX_TRACKED_KEYS,
  ) {}

  /** Counts one event of `key`; 0 when within the limit, else the seconds until it frees. */
  admit(key: string): number {
    if (this.limit === 0) return 0;
    const now = this.now();
    this.forgetExpired(now);
    const window = this.windows.get(key);
    if (window) {
      if (window.count < this.limit) {
        window.count++;
        return 0;
      }
      return Math.max(1, Math.ceil((window.startedAt + this.windowMs - now) / 1000));
    }
    if (this.windows.size >= this.maxTracked) {
      // Every tracked window is still running: forgetting the oldest lets that key in early,
      // which is better than refusing keys never seen or growing without bound.
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
    this.windows.set(key, { startedAt: now, count: 1 });
    return 0;
  }

  /** False when `limit` is 0: nothing is counted, so the caller need not even find the key. */
  get enabled(): boolean {
    return this.limit > 0;
  }

  /** Keys with a running window (for tests). */
  get tracked(): number {
    return this.windows.size;
  }

  private forgetExpired(now: number): void {
    for (const [key, window] of this.windows) {
      if (now - window.startedAt < this.windowMs) return;
      this.windows.delete(key);
    }
  }
}
