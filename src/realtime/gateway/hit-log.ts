/** How often keys whose hits all expired are forgotten (as ThrottlerStorageService sweeps). */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * A sliding-window log: the expiry times of the hits in the window, oldest first (the window is
 * the same for every hit, so they are added in order). Expired hits are dropped from the front.
 */
export class HitLog {
  private expiries: number[] = [];
  private head = 0;

  /** Drops the hits expired at `now` (as the storage does: kept while expiry > now). */
  live(now: number): number {
    const { expiries } = this;
    let head = this.head;
    while (head < expiries.length && expiries[head]! <= now) head++;
    if (head === expiries.length) {
      this.expiries = [];
      head = 0;
    } else if (head > 64 && head * 2 > expiries.length) {
      this.expiries = expiries.slice(head);
      head = 0;
    }
    this.head = head;
    return this.expiries.length - head;
  }

  add(expiry: number): void {
    this.expiries.push(expiry);
  }

  /** Expiry of the oldest live hit; call after {@link live}, with at least one hit. */
  oldest(): number {
    return this.expiries[this.head]!;
  }
}

/**
 * Hit logs by key (a user, an admin), made on first use; keys with nothing live are forgotten
 * by a sweep, so memory follows the keys active within the window.
 */
export class KeyedHitLogs<T extends Record<string, HitLog>> {
  private readonly entries = new Map<string, T>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(private readonly create: () => T) {}

  get(key: string): T {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = this.create();
      this.entries.set(key, entry);
      this.sweep ??= setInterval(() => this.forgetIdle(), SWEEP_INTERVAL_MS).unref();
    }
    return entry;
  }

  stop(): void {
    clearInterval(this.sweep);
    this.sweep = undefined;
  }

  private forgetIdle(): void {
    const now = Date.now();
    for (const [key, logs] of this.entries) {
      if (Object.values(logs).every((log) => log.live(now) === 0)) this.entries.delete(key);
    }
  }
}
