import type { Duplex } from 'node:stream';
import { KeyedWindowCounter } from './keyed-window-counter.js';
import { refuseUpgrade } from './upgrade-refusal.js';

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

/** Answers a refused upgrade with 429 and drops the socket. */
export function refuseTooManyUpgrades(socket: Duplex, retryAfterSeconds: number): void {
  refuseUpgrade(socket, '429 Too Many Requests', [`Retry-After: ${retryAfterSeconds}`]);
}
