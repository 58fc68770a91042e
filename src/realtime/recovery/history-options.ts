import { MAX_TIMER_MS } from '../timer-limits.js';

/** How much of each stream is kept for clients that reconnect (PROTOCOL.md section 9). */
export interface HistoryOptions {
  /** Messages kept per stream. @default 300 */
  maxMessages?: number;
  /** Age after which a message is no longer replayed, ms. @default 120000 */
  maxAgeMs?: number;
  /** Streams kept in memory at once (one instance); the least recently written goes. @default 100000 */
  maxStreams?: number;
  /**
   * Bytes of frames kept in memory in all (one instance); past it whole streams go, least
   * recently written first. @default 67108864 (64 MiB)
   */
  maxBytes?: number;
  /** How long after connecting a client may `resume`, ms. @default 60000 */
  resumeWindowMs?: number;
}

export type ResolvedHistoryOptions = Required<HistoryOptions>;

export const HISTORY_DEFAULTS: ResolvedHistoryOptions = {
  maxMessages: 300,
  maxAgeMs: 120_000,
  maxStreams: 100_000,
  maxBytes: 64 * 1024 * 1024,
  resumeWindowMs: 60_000,
};

/** `false` turns recovery off: no stream positions on messages, nothing a `resume` can recover. */
export function resolveHistoryOptions(
  options: HistoryOptions | false | undefined,
): ResolvedHistoryOptions | false {
  if (options === false) return false;
  const resolved = { ...HISTORY_DEFAULTS };
  for (const key of Object.keys(HISTORY_DEFAULTS) as Array<keyof ResolvedHistoryOptions>) {
    const value = options?.[key];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value <= 0) {
      throw new Error(`RealtimeModule: history.${key} must be a positive integer, got ${value}`);
    }
    if (key.endsWith('Ms') && value > MAX_TIMER_MS) {
      throw new Error(
        `RealtimeModule: history.${key} must be at most ${MAX_TIMER_MS} ms (Node's timers)`,
      );
    }
    resolved[key] = value;
  }
  return resolved;
}
