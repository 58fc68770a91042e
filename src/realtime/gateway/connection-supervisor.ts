import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { WebSocket } from 'ws';
import { CloseCode, CloseReason } from '../../protocol/index.js';
import { monotonicNow } from '../monotonic-clock.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { MAX_TIMER_MS } from '../timer-limits.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { TokenExpirySchedule } from '../registry/token-expiry-schedule.js';
import { ConnectionCloser } from './connection-closer.js';
import { PerTurnQueue } from './per-turn-queue.js';

/** Pings or closes written per turn of the event loop (256 pings took about 10 ms here). */
const PER_TURN = 256;
/** Shortest liveness tick: a sweep of every connection more often than this is waste. */
const MIN_TICK_MS = 10;

/**
 * Runs the two clocks of every connection: liveness (protocol pings every `heartbeatInterval`,
 * 4000 after `connectionTimeout` without any inbound frame) and token expiry (4001).
 */
@Injectable()
export class ConnectionSupervisor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private livenessTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private livenessTickMs = 1;
  /** Delay between pings: the heartbeat interval, less when the timeout leaves too little room. */
  private pingEveryMs = 1;
  private nextPhase = 0;
  /** Monotonic time of the previous liveness sweep. */
  private sweptAt = monotonicNow();
  /** True when the previous sweep came late and left timeouts unjudged. */
  private deferred = false;
  // Each ping and each close is a socket write: thousands in one go would stall every message.
  private readonly pings = new PerTurnQueue<RealtimeConnection>(PER_TURN, (connection) => {
    if (!connection.closing && connection.socket.readyState === WebSocket.OPEN) {
      connection.socket.ping();
    }
  });
  private readonly timeouts = new PerTurnQueue<RealtimeConnection>(PER_TURN, (connection) => {
    // Judged a few turns ago at most: a frame since then keeps it open.
    if (monotonicNow() - connection.lastActivity < this.options.connectionTimeoutMs) return;
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
    // timeout late; one pass over the connections is cheap next to that. Capped where
    // setInterval overflows: a timeout of 2^31 ms or more swept every connection every ms.
    this.livenessTickMs = Math.min(
      MAX_TIMER_MS,
      Math.max(MIN_TICK_MS, Math.min(heartbeatIntervalMs, Math.ceil(connectionTimeoutMs / 10))),
    );
    // A ping goes out up to a tick after it is due, and its pong is seen a tick later at most:
    // with a timeout under interval + 2 ticks, clients that answered every ping timed out.
    this.pingEveryMs = Math.max(
      1,
      Math.min(heartbeatIntervalMs, connectionTimeoutMs - 2 * this.livenessTickMs),
    );
    this.sweptAt = monotonicNow();
    this.livenessTimer = setInterval(() => this.checkLiveness(), this.livenessTickMs).unref();
    this.expiryTimer = setInterval(
      // Token expiry is wall-clock time by definition (JWT `exp`).
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

  private checkLiveness(): void {
    const timedOut: RealtimeConnection[] = [];
    const due: RealtimeConnection[] = [];
    const now = monotonicNow();
    const previous = this.sweptAt;
    this.sweptAt = now;
    // A sweep more than a tick late follows a stall of this process (a long GC, a blocking
    // handler, SIGSTOP): frames that came meanwhile are unread yet and no ping went out, and
    // judging now closed every client. Judged on the next sweep, after those frames and the
    // answers to the pings sent below; never twice in a row, so a loop that is always late
    // still times out dead peers.
    const judge = now - previous <= 2 * this.livenessTickMs || this.deferred;
    this.deferred = !judge;
    const { history, connectionTimeoutMs } = this.options;
    const resumeOpenAfter = history ? now - history.resumeWindowMs : 0;
    for (const connection of this.registry.all()) {
      if (connection.resumeOpen && connection.connectedAt < resumeOpenAfter) {
        // The resume window passed: stop noting live offsets, and let their map go.
        connection.resumeOpen = false;
        connection.firstLiveOffsets = undefined;
      }
      if (judge && now - connection.lastActivity >= connectionTimeoutMs) {
        timedOut.push(connection);
        continue;
      }
      // Monotonic, from the connect: the first ping is no later than later ones would be.
      if (connection.nextPingAt === 0) {
        connection.nextPingAt = connection.connectedAt + this.firstPingDelay();
      }
      if (now >= connection.nextPingAt) {
        connection.nextPingAt = now + this.pingEveryMs;
        due.push(connection);
      }
    }
    this.pings.push(due);
    this.timeouts.push(timedOut);
  }

  /**
   * The ping delay less 0, 1, 2… ticks, in turn: connections that arrive together are pinged in
   * as many groups as an interval has ticks rather than all in one tick, which at 5,000
   * connections stalled every other message for up to 200 ms once per interval.
   */
  private firstPingDelay(): number {
    const phases = Math.max(1, Math.floor(this.pingEveryMs / this.livenessTickMs));
    const phase = this.nextPhase % phases;
    this.nextPhase = phase + 1;
    return this.pingEveryMs - phase * this.livenessTickMs;
  }

  private closeExpired(now: number): void {
    this.expirations.push(this.expiry.takeExpired(now));
  }
}
