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

/**
 * Runs the two clocks of every connection: liveness (protocol pings every `heartbeatInterval`,
 * 4000 after `connectionTimeout` without any inbound frame) and token expiry (4001).
 */
/** Pings written in one turn of the event loop (about 2 ms of writes here). */
const PINGS_PER_TURN = 256;

@Injectable()
export class ConnectionSupervisor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private livenessTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private livenessTickMs = 1;
  /** Liveness ticks per heartbeat interval: the groups that pings are spread over. */
  private phases = 1;
  private nextPhase = 0;
  /** Connections whose ping is due, sent a few hundred per turn by {@link sendPings}. */
  private pingQueue: RealtimeConnection[] = [];
  private pingHead = 0;
  private pinging = false;

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
    this.phases = Math.max(1, Math.floor(heartbeatIntervalMs / livenessTick));
    this.livenessTimer = setInterval(() => this.checkLiveness(Date.now()), livenessTick).unref();
    this.expiryTimer = setInterval(
      () => this.closeExpired(Date.now()),
      TokenExpirySchedule.TICK_MS,
    ).unref();
  }

  beforeApplicationShutdown(): void {
    clearInterval(this.livenessTimer);
    clearInterval(this.expiryTimer);
    this.pingQueue = [];
    this.pingHead = 0;
  }

  private checkLiveness(now: number): void {
    const timedOut: RealtimeConnection[] = [];
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
        this.pingQueue.push(connection);
      }
    }
    if (this.pingQueue.length > 0 && !this.pinging) this.sendPings();
    for (const connection of timedOut) {
      this.closer.close(connection, CloseCode.CONNECTION_TIMEOUT, CloseReason.CONNECTION_TIMEOUT);
    }
  }

  /**
   * The heartbeat interval less 0, 1, 2… ticks, in turn: connections that arrive together are
   * pinged in `phases` groups rather than all in one tick, which at 5,000 connections stalled
   * every other message for up to 200 ms once per interval.
   */
  private firstPingDelay(): number {
    const phase = this.nextPhase;
    this.nextPhase = (phase + 1) % this.phases;
    return this.options.heartbeatIntervalMs - phase * this.livenessTickMs;
  }

  /**
   * Pings the queued connections, {@link PINGS_PER_TURN} per turn of the event loop: each ping
   * is a socket write, and messages wait behind a long run of them.
   */
  private readonly sendPings = (): void => {
    const queue = this.pingQueue;
    const end = Math.min(queue.length, this.pingHead + PINGS_PER_TURN);
    for (let i = this.pingHead; i < end; i++) {
      const { socket, closing } = queue[i]!;
      if (!closing && socket.readyState === WebSocket.OPEN) socket.ping();
    }
    this.pingHead = end;
    this.pinging = end < queue.length;
    if (this.pinging) setImmediate(this.sendPings);
    else {
      this.pingQueue = [];
      this.pingHead = 0;
    }
  };

  private closeExpired(now: number): void {
    for (const connection of this.expiry.takeExpired(now)) {
      this.closer.close(connection, CloseCode.UNAUTHORIZED, CloseReason.TOKEN_EXPIRED);
    }
  }
}
