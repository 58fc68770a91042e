/**
 * Retries with doubling delays, a bounded number of times in a row: for work that an instance
 * which stays connected but does not answer in time (busy, or its path to Redis stalled) would
 * otherwise leave undone until the next reconnection, which may never come.
 */
export class RetryBackoff {
  private timer: NodeJS.Timeout | undefined;
  private count = 0;

  constructor(
    private readonly firstMs: number,
    private readonly times: number,
    private readonly retry: () => void,
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
