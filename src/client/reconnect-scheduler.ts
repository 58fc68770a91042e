import { reconnectDelayMs } from './backoff.js';
import type { ResolvedOptions } from './options.js';

type ReconnectOptions = Pick<
  ResolvedOptions,
  'minReconnectDelayMs' | 'maxReconnectDelayMs' | 'maxReconnectAttempts' | 'random'
>;

/** Counts the reconnect attempts in a row and runs the next one after its backoff delay. */
export class ReconnectScheduler {
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: ReconnectOptions) {}

  get hasAttemptsLeft(): boolean {
    return this.attempt < this.options.maxReconnectAttempts;
  }

  /** A connection succeeded (or a fresh `connect()` began): the backoff starts over. */
  reset(): void {
    this.attempt = 0;
  }

  schedule(reconnect: () => void): void {
    const delay = reconnectDelayMs(
      this.attempt++,
      {
        minDelayMs: this.options.minReconnectDelayMs,
        maxDelayMs: this.options.maxReconnectDelayMs,
      },
      this.options.random,
    );
    this.cancel();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      reconnect();
    }, delay);
  }

  cancel(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
