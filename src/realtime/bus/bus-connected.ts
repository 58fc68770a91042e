import { setTimeout as sleep } from 'node:timers/promises';
import type { RealtimeBus } from './realtime-bus.js';

/** After a reconnection the bus may still be resubscribing (its backoff reaches 5 s). */
const CONNECTED_POLL_MS = 100;
const CONNECTED_POLLS = 100;

/**
 * Whether the bus reaches the others, waiting up to 10 s for it; false at once when `stopped`
 * (the app is shutting down).
 */
export async function busConnected(bus: RealtimeBus, stopped: () => boolean): Promise<boolean> {
  for (let poll = 0; poll < CONNECTED_POLLS; poll++) {
    if (stopped()) return false;
    if (bus.isConnected()) return true;
    await sleep(CONNECTED_POLL_MS, undefined, { ref: false });
  }
  return false;
}
