import { monotonicNow } from '../monotonic-clock.js';
import { RECENT_DECISION_MS } from './control-requests.js';

/**
 * Drops entries of `recent` from the first recorded on (a Map keeps insertion order) while they
 * are older than RECENT_DECISION_MS by `timeOf`, or more than `max` are kept.
 */
export function forgetOld<K, V>(
  recent: Map<K, V>,
  timeOf: (value: V) => number,
  max: number,
): void {
  const oldest = monotonicNow() - RECENT_DECISION_MS;
  for (const [key, value] of recent) {
    if (timeOf(value) > oldest && recent.size <= max) return;
    recent.delete(key);
  }
}
