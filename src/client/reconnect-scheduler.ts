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
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  /** What the server asked the next attempt to wait (`Retry-After`), on top of the backoff. */
  private floorMs = 0;

  constructor(private readonly options: ReconnectOptions) {}

  get hasAttemptsLeft(): boolean {
    return this.attempt < this.options.maxReconnectAttempts;
  }

  /** A fresh `connect()` began: the backoff starts over. */
  reset(): void {
    this.cancelStable();
    this.attempt = 0;
    this.floorMs = 0;
  }

  /**
   * The server refused with `Retry-After`: the next attempt waits that long plus its usual
   * jittered delay, so that the clients it refused together do not all return in one instant.
   */
  delayNextBy(delayMs: number): void {
    this.floorMs = Math.max(this.floorMs, delayMs);
  }

  /**
   * A connection was accepted: the backoff starts over only once it has stayed up for
   * `stableMs`, so that a server that accepts and then closes at once is not hammered.
   */
  resetWhenStable(stableMs: number): void {
    this.cancelStable();
    this.stableTimer = setTimeout(() => {
      this.stableTimer = undefined;
      this.attempt = 0;
    }, stableMs);
  }

  schedule(reconnect: () => void): void {
    const backoff = reconnectDelayMs(
      this.attempt++,
      {
        minDelayMs: this.options.minReconnectDelayMs,
        maxDelayMs: this.options.maxReconnectDelayMs,
      },
      this.options.random,
    );
    const delay = this.floorMs + backoff;
    this.floorMs = 0;
    this.cancel();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      reconnect();
    }, delay);
  }

  /** Cancels the scheduled reconnect, and the reset of a connection that is now gone. */
  cancel(): void {
    this.cancelStable();
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private cancelStable(): void {
    if (this.stableTimer === undefined) return;
    clearTimeout(this.stableTimer);
    this.stableTimer = undefined;
  }
}
