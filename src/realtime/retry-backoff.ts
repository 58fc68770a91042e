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

  constructor(
    private readonly retry: () => void,
    private readonly firstMs = RETRY_FIRST_MS,
    private readonly times = RETRIES,
  ) {}

  /** Starts the count over: the work was done, or another occasion came. */
  reset(): void {
    this.count = 0;
  }

  /** The next retry, after firstMs × 2^n; nothing while one is pending or the count is spent. */
  schedule(): void {
    if (this.timer || this.count >= this.times) return;
    const delay = this.firstMs * 2 ** this.count++;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.retry();
    }, delay);
    this.timer.unref();
  }

  /** No more retries, pending or later. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.count = this.times;
  }
}
