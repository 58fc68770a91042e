/**
 * For `npm run bench:coalescing` only: BENCH_COALESCE=off makes the module write every frame at
 * once (fan-out too), =all holds direct replies until the end of the turn as well. Unset, the
 * module runs as shipped (fan-out coalesced, replies at once). The switch patches the target's
 * SocketWriter, so the library itself has no such option.
 */
import { SocketWriter } from '../../src/realtime/gateway/socket-writer.js';

export const COALESCING_MODES = ['fan-out', 'off', 'all'] as const;
export type CoalescingMode = (typeof COALESCING_MODES)[number];

export function applyCoalescingMode(mode: string | undefined): void {
  if (mode === undefined || mode === 'fan-out') return;
  if (mode !== 'off' && mode !== 'all') {
    throw new Error(`BENCH_COALESCE must be one of ${COALESCING_MODES.join(', ')}, got "${mode}"`);
  }
  const write = SocketWriter.prototype.write;
  SocketWriter.prototype.write = function (this: SocketWriter, connection, frame) {
    return write.call(this, connection, frame, mode === 'all');
  };
}
