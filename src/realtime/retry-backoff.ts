/** The first retry's delay; each next one doubles it. */
export const RETRY_FIRST_MS = 1000;
/** Retries in a row at most: 1 + 2 + … + 32 s, about a minute in all. */
export const RETRIES = 6;

/**
 * Retries with doubling delays, a bounded number of times in a row: for work that an instance
 * which stays connected but does not answer in time (busy, or its path to Redis stalled) would
 * otherwise leave undone until the next reconnection, which may never come. Past the bound, the
 * next occasion (a reset) starts again.
 */
export class RetryBackoff {
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  private stopped = false;

  constructor(
    private readonly retry: () => void,
    private readonly firstMs = RETRY_FIRST_MS,
    private readonly times = RETRIES,
  ) {}

  /** True once the last retry was scheduled: the next failure has none after it. */
  get spent(): boolean {
    return this.count >= this.times;
  }

  /** Starts the count over: the work was done, or another occasion came. */
  reset(): void {
    this.count = 0;
  }

  /** The next retry, after firstMs × 2^n; nothing while one is pending or the count is spent. */
  schedule(): void {
    if (this.timer || this.spent || this.stopped) return;
    const delay = this.firstMs * 2 ** this.count++;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.retry();
    }, delay);
    this.timer.unref();
  }

  /**
   * For a new occasion that should not run the work at once: the next retry as {@link schedule}
   * would, with the count started over if it was spent (not while retries are under way, whose
   * doubling it keeps).
   */
  scheduleAfresh(): void {
    if (this.spent) this.count = 0;
    this.schedule();
  }

  /** No more retries, pending or later. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopped = true;
  }
}
