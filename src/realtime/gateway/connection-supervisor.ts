import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { CloseCode, CloseReason } from '../../protocol/index.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { TokenExpirySchedule } from '../registry/token-expiry-schedule.js';
import { ConnectionCloser } from './connection-closer.js';
import { PerTurnQueue } from './per-turn-queue.js';

/** Pings or closes written per turn of the event loop (256 pings took about 10 ms here). */
const PER_TURN = 256;

/**
 * Runs the two clocks of every connection: liveness (protocol pings every `heartbeatInterval`,
 * 4000 after `connectionTimeout` without any inbound frame) and token expiry (4001).
 */
@Injectable()
export class ConnectionSupervisor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private livenessTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private livenessTickMs = 1;
  private nextPhase = 0;
  // Each ping and each close is a socket write: thousands in one go would stall every message.
  private readonly pings = new PerTurnQueue<RealtimeConnection>(PER_TURN, (connection) => {
    if (!connection.closing && connection.socket.readyState === WebSocket.OPEN) {
      connection.socket.ping();
    }
  });
  private readonly timeouts = new PerTurnQueue<RealtimeConnection>(PER_TURN, (connection) => {
    // Judged a few turns ago at most: a frame since then keeps it open.
    if (Date.now() - connection.lastActivity < this.options.connectionTimeoutMs) return;
    this.closer.close(connection, CloseCode.CONNECTION_TIMEOUT, CloseReason.CONNECTION_TIMEOUT);
  });
  private readonly expirations = new PerTurnQueue<RealtimeConnection>(PER_TURN, (connection) =>
    this.closer.close(connection, CloseCode.UNAUTHORIZED, CloseReason.TOKEN_EXPIRED),
  );

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly registry: ConnectionRegistry,
    private readonly expiry: TokenExpirySchedule,
    private readonly closer: ConnectionCloser,
  ) {}

  onApplicationBootstrap(): void {
    const { heartbeatIntervalMs, connectionTimeoutMs } = this.options;
    // Checked more often than pinged, so that a silent peer is closed at most a tenth of the
    // timeout late; one pass over the connections is cheap next to that.
    const livenessTick = Math.max(
      10,
      Math.min(heartbeatIntervalMs, Math.ceil(connectionTimeoutMs / 10)),
    );
    this.livenessTickMs = livenessTick;
    this.livenessTimer = setInterval(() => this.checkLiveness(Date.now()), livenessTick).unref();
    this.expiryTimer = setInterval(
      () => this.closeExpired(Date.now()),
      TokenExpirySchedule.TICK_MS,
    ).unref();
  }

  beforeApplicationShutdown(): void {
    clearInterval(this.livenessTimer);
    clearInterval(this.expiryTimer);
    this.pings.clear();
    this.timeouts.clear();
    this.expirations.clear();
  }

  private checkLiveness(now: number): void {
    const timedOut: RealtimeConnection[] = [];
    const due: RealtimeConnection[] = [];
    const { history } = this.options;
    // performance.timeOrigin-based, like connectedAt.
    const resumeOpenAfter = history
      ? performance.timeOrigin + performance.now() - history.resumeWindowMs
      : 0;
    for (const connection of this.registry.all()) {
      if (connection.resumeOpen && connection.connectedAt < resumeOpenAfter) {
        // The resume window passed: stop noting live offsets, and let their map go.
        connection.resumeOpen = false;
        connection.firstLiveOffsets = undefined;
      }
      if (now - connection.lastActivity >= this.options.connectionTimeoutMs) {
        timedOut.push(connection);
      } else if (connection.nextPingAt === 0) {
        connection.nextPingAt = now + this.firstPingDelay();
      } else if (now >= connection.nextPingAt) {
        connection.nextPingAt = now + this.options.heartbeatIntervalMs;
        due.push(connection);
      }
    }
    this.pings.push(due);
    this.timeouts.push(timedOut);
  }

  /**
   * The heartbeat interval less 0, 1, 2… ticks, in turn: connections that arrive together are
   * pinged in as many groups as an interval has ticks rather than all in one tick, which at
   * 5,000 connections stalled every other message for up to 200 ms once per interval.
   */
  private firstPingDelay(): number {
    const { heartbeatIntervalMs } = this.options;
    const phases = Math.max(1, Math.floor(heartbeatIntervalMs / this.livenessTickMs));
    const phase = this.nextPhase % phases;
    this.nextPhase = phase + 1;
    return heartbeatIntervalMs - phase * this.livenessTickMs;
  }

  private closeExpired(now: number): void {
    this.expirations.push(this.expiry.takeExpired(now));
  }
}
