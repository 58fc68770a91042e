import type { ConnectionLimits } from '../protocol/index.js';
import { defaults } from './options.js';
import { encodeFrame } from './wire.js';

/**
 * Keeps an established connection alive with heartbeats and declares the server dead once it
 * has been silent for the connection timeout: a dead peer does not always close the socket.
 */
export class LivenessMonitor {
  private lastReceivedAt = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly write: (frame: string) => void,
    private readonly onSilent: () => void,
  ) {}

  /** Anything received (and a fresh socket) counts as a sign of life. */
  markAlive(): void {
    this.lastReceivedAt = performance.now();
  }

  /** Starts the heartbeat with the server's limits (defaults where they are unusable). */
  start(limits: ConnectionLimits | undefined): void {
    this.stop();
    const intervalMs = positiveSeconds(limits?.heartbeat_interval) ?? defaults.heartbeatIntervalMs;
    const timeoutMs = positiveSeconds(limits?.connection_timeout) ?? defaults.connectionTimeoutMs;
    this.timer = setInterval(() => {
      const silentMs = performance.now() - this.lastReceivedAt;
      if (silentMs >= timeoutMs) {
        this.onSilent();
        return;
      }
      // `heartbeat` gets no answer; when the server has been quiet for a whole interval, a
      // `ping` (which also counts as a heartbeat) makes it answer, so that a live but idle
      // server is never mistaken for a dead one.
      this.write(encodeFrame(silentMs >= intervalMs ? 'ping' : 'heartbeat', {}));
    }, intervalMs);
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Seconds from `connection.established` as milliseconds, when usable. */
function positiveSeconds(seconds: number | undefined): number | undefined {
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0
    ? seconds * 1000
    : undefined;
}
