import type { ConnectionLimits } from '../protocol/index.js';
import { defaults } from './options.js';
import { encodeFrame } from './wire.js';

/**
 * Bounds on the server's announced heartbeat interval: below 1 s the client would flood the
 * server; above 10 min a dead server goes unnoticed for too long (and a delay of 2^31 ms or
 * more makes `setInterval` fire every millisecond).
 */
export const MIN_HEARTBEAT_INTERVAL_MS = 1_000;
export const MAX_HEARTBEAT_INTERVAL_MS = 600_000;

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

  /**
   * Starts the heartbeat with the server's limits (defaults where they are unusable, clamped to
   * sane bounds); returns the heartbeat interval used, in milliseconds.
   */
  start(limits: ConnectionLimits | undefined): number {
    this.stop();
    const { intervalMs, timeoutMs } = livenessTimings(limits);
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
    return intervalMs;
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * The heartbeat interval and connection timeout to use, in milliseconds. The timeout is at
 * least two intervals: the check runs once per interval, and a quiet server pinged at one tick
 * must have until the next one to answer.
 */
export function livenessTimings(limits: ConnectionLimits | undefined): {
  intervalMs: number;
  timeoutMs: number;
} {
  const intervalMs = clamp(
    positiveSeconds(limits?.heartbeat_interval) ?? defaults.heartbeatIntervalMs,
    MIN_HEARTBEAT_INTERVAL_MS,
    MAX_HEARTBEAT_INTERVAL_MS,
  );
  const timeoutMs = clamp(
    positiveSeconds(limits?.connection_timeout) ?? defaults.connectionTimeoutMs,
    2 * intervalMs,
    2 * MAX_HEARTBEAT_INTERVAL_MS,
  );
  return { intervalMs, timeoutMs };
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

/** Seconds from `connection.established` as milliseconds, when usable. */
function positiveSeconds(seconds: unknown): number | undefined {
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0
    ? seconds * 1000
    : undefined;
}
