import type { Duplex } from 'node:stream';
import { KeyedWindowCounter } from './keyed-window-counter.js';

/**
 * Counts WebSocket upgrades per remote address in one-second windows, so that a flood is refused
 * before any token is verified.
 */
export class UpgradeRateLimiter extends KeyedWindowCounter {
  /** `perSecond` 0 turns the limit off. */
  constructor(perSecond: number, now?: () => number, maxTracked?: number) {
    super(perSecond, 1000, now, maxTracked);
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
