import type { Duplex } from 'node:stream';

/** Length of one counting window; the option is a rate per second. */
const WINDOW_MS = 1000;
/** Addresses tracked at once; past it the one whose window started first is forgotten. */
export const MAX_TRACKED_ADDRESSES = 10_000;

interface Window {
  startedAt: number;
  count: number;
}

/**
 * Counts WebSocket upgrades per remote address in a fixed window that starts with the address's
 * first upgrade, so that a flood is refused before any token is verified. Memory is bounded:
 * windows are kept in the order they started, which lets expired ones go from the front.
 */
export class UpgradeRateLimiter {
  private readonly windows = new Map<string, Window>();

  /** `perSecond` 0 turns the limit off. */
  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
    private readonly maxTracked = MAX_TRACKED_ADDRESSES,
  ) {}

  /** Counts one upgrade; 0 when it may proceed, else the seconds to wait (for Retry-After). */
  admit(address: string): number {
    if (this.perSecond === 0) return 0;
    const now = this.now();
    this.forgetExpired(now);
    const window = this.windows.get(address);
    if (window) {
      if (window.count < this.perSecond) {
        window.count++;
        return 0;
      }
      return Math.max(1, Math.ceil((window.startedAt + WINDOW_MS - now) / 1000));
    }
    if (this.windows.size >= this.maxTracked) {
      // Every tracked window is still running: forgetting the oldest lets that address in early,
      // which is better than refusing addresses never seen or growing without bound.
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
    this.windows.set(address, { startedAt: now, count: 1 });
    return 0;
  }

  /** Addresses with a running window (for tests). */
  get tracked(): number {
    return this.windows.size;
  }

  private forgetExpired(now: number): void {
    for (const [address, window] of this.windows) {
      if (now - window.startedAt < WINDOW_MS) return;
      this.windows.delete(address);
    }
  }
}

/** Answers a refused upgrade with 429 and drops the socket once the answer is written. */
export function refuseTooManyUpgrades(socket: Duplex, retryAfterSeconds: number): void {
  socket.once('finish', () => socket.destroy());
  socket.end(
    'HTTP/1.1 429 Too Many Requests\r\n' +
      `Retry-After: ${retryAfterSeconds}\r\n` +
      'Connection: close\r\nContent-Length: 0\r\n\r\n',
  );
}
