import {
  CloseCode,
  CloseReason,
  type ConnectionEstablishedData,
  type ServerEnvelope,
} from '../protocol/index.js';
import { closeDecision } from './close-policy.js';
import type { ConnectionStateMachine } from './connection-state.js';
import { closeQuietly, CurrentSocket } from './current-socket.js';
import { ClientErrorCode, describeClose, errorMessage, RealtimeClientError } from './errors.js';
import type { ListenerRegistry } from './event-emitter.js';
import { LivenessMonitor } from './liveness-monitor.js';
import type { ResolvedOptions, WebSocketLike } from './options.js';
import { ReconnectScheduler } from './reconnect-scheduler.js';
import { parseServerFrame } from './wire.js';

/** What the client does at the points of the lifecycle that concern its messages. */
export interface LifecycleHooks {
  onMessage: (envelope: ServerEnvelope) => void;
  /** The socket closed or was dropped: what it carried will get no reply. */
  onSocketLost: (code: number, reason: string) => void;
  /** A server message over `maxMessageSize` was refused unread; the socket is dropped next. */
  onTooLarge: () => void;
  /** The client ends up `closed` without `close()`: nothing will be retried. */
  onGiveUp: (error: RealtimeClientError) => void;
}

/**
 * Opens sockets with a token from `getToken()`, watches them (connect timeout, liveness) and,
 * after a close, reconnects with backoff or gives up as the close code says.
 */
export class ConnectionLifecycle {
  private readonly socket: CurrentSocket;
  private readonly liveness: LivenessMonitor;
  private readonly reconnects: ReconnectScheduler;
  private established: ConnectionEstablishedData | undefined;
  /** Bumped by `stop()`, so that an awaited `getToken()` that finishes later is ignored. */
  private generation = 0;
  /** Bounds the `getToken()` in progress; cleared by `stop()` so that no timer outlives it. */
  private tokenTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly listeners: ListenerRegistry,
    private readonly stateMachine: ConnectionStateMachine,
    private readonly hooks: LifecycleHooks,
  ) {
    this.socket = new CurrentSocket(options);
    this.liveness = new LivenessMonitor(
      (frame) => this.socket.write(frame),
      () => this.dropSocket(CloseCode.CONNECTION_TIMEOUT, CloseReason.CONNECTION_TIMEOUT),
    );
    this.reconnects = new ReconnectScheduler(options);
  }

  /** `connection.established` data of the current connection, while there is one. */
  get connection(): ConnectionEstablishedData | undefined {
    return this.established;
  }

  get currentSocket(): WebSocketLike | undefined {
    return this.socket.current;
  }

  write(frame: string): boolean {
    return this.socket.write(frame);
  }

  /** Connects from `closed`, with the backoff starting over. */
  start(): void {
    this.reconnects.reset();
    this.stateMachine.set('connecting');
    void this.openSocket();
  }

  /** The server accepted the connection: heartbeats start with its limits. */
  accept(data: ConnectionEstablishedData): void {
    this.socket.stopConnectTimer();
    this.established = data;
    const intervalMs = this.liveness.start(data.limits);
    // A connection that outlives one heartbeat interval has carried traffic both ways: only
    // then does the backoff start over, so that accept-then-close servers still see it grow.
    this.reconnects.resetWhenStable(intervalMs);
  }

  /** For `close()`: stops every timer and returns the released socket, still to be closed. */
  stop(): WebSocketLike | undefined {
    this.generation++;
    this.clearTokenTimer();
    this.reconnects.cancel();
    this.liveness.stop();
    const socket = this.socket.release();
    this.established = undefined;
    return socket;
  }

  private async openSocket(presetToken?: string): Promise<void> {
    const generation = this.generation;
    let token: string;
    try {
      token = presetToken ?? (await this.fetchToken());
    } catch (error) {
      if (generation !== this.generation) return;
      this.listeners.emit(
        'error',
        new RealtimeClientError(
          ClientErrorCode.TOKEN_UNAVAILABLE,
          `getToken() failed: ${errorMessage(error)}`,
        ),
      );
      this.afterConnectionLost(CloseCode.INTERNAL_ERROR, 'getToken() failed', 'reconnect');
      return;
    }
    if (generation !== this.generation) return;
    try {
      this.socket.open(token, {
        onMessage: (raw) => this.onFrame(raw),
        onClose: (code, reason) => this.onSocketClosed(code, reason),
        onConnectTimeout: () => this.dropSocket(CloseCode.CONNECTION_TIMEOUT, 'Connect timeout'),
        onTooLarge: () => this.onTooLarge(),
        onRetryAfter: (delayMs) => this.reconnects.delayNextBy(delayMs),
      });
    } catch (error) {
      // A malformed URL cannot get better by retrying.
      const failure = new RealtimeClientError(
        ClientErrorCode.CONNECTION_CLOSED,
        `Cannot open ${this.options.url}: ${errorMessage(error)}`,
      );
      this.listeners.emit('error', failure);
      this.giveUp(failure);
      return;
    }
    this.liveness.markAlive();
  }

  private onFrame(raw: unknown): void {
    const envelope = parseServerFrame(raw);
    if (!envelope) return;
    this.liveness.markAlive();
    try {
      this.hooks.onMessage(envelope);
    } catch (error) {
      // Thrown here it would escape the socket's listener: in Node, an uncaught exception.
      this.listeners.emit(
        'error',
        new RealtimeClientError(
          ClientErrorCode.INVALID_SERVER_MESSAGE,
          `Cannot handle ${envelope.type}: ${errorMessage(error)}`,
        ),
      );
    }
  }

  /**
   * The server broke its own limits (it never sends over its `maxMessageSize`) or is hostile:
   * the connection is dropped as `ws` drops it, with 1009, and reconnected like any other.
   */
  private onTooLarge(): void {
    this.listeners.emit(
      'error',
      new RealtimeClientError(
        ClientErrorCode.INVALID_SERVER_MESSAGE,
        `A server message exceeded maxMessageSize (${this.options.maxMessageSize} bytes)`,
      ),
    );
    this.hooks.onTooLarge();
    this.dropSocket(CloseCode.MESSAGE_TOO_BIG, CloseReason.MESSAGE_TOO_BIG);
  }

  /** Gives up on the current socket without waiting for its close handshake. */
  private dropSocket(code: number, reason: string): void {
    const socket = this.socket.current;
    if (!socket) return;
    this.onSocketClosed(code, reason);
    closeQuietly(socket, code, reason);
  }

  private onSocketClosed(code: number, reason: string): void {
    this.socket.release();
    this.established = undefined;
    this.liveness.stop();
    // The connection did not last: the backoff goes on from where it was.
    this.reconnects.cancel();
    this.hooks.onSocketLost(code, reason);
    if (this.stateMachine.state === 'closed') return;
    const decision = this.options.reconnect ? closeDecision(code) : 'stop';
    if (decision === 'reconnect-with-new-token') {
      void this.reconnectWithNewToken(code, reason);
      return;
    }
    this.afterConnectionLost(code, reason, decision);
  }

  /**
   * After a 4001: reconnect only when `getToken()` yields a token other than the refused one. The
   * connection is gone already: `close` and `reconnecting` come first, not once the token does.
   */
  private async reconnectWithNewToken(code: number, reason: string): Promise<void> {
    const generation = this.generation;
    const refused = this.socket.token;
    if (!this.announceClose(code, reason, 'reconnect')) return;
    let token: string | undefined;
    try {
      token = await this.fetchToken();
    } catch {
      token = undefined;
    }
    if (generation !== this.generation || this.stateMachine.state === 'closed') return;
    if (token === undefined || token === refused) {
      this.giveUp(closedError(code, reason));
      return;
    }
    this.reconnects.schedule(() => void this.openSocket(token));
  }

  /**
   * `getToken()`, bounded by the connect timeout: one that never settles would otherwise keep
   * the client from ever connecting again. A timeout rejects, like a failed fetch.
   */
  private fetchToken(): Promise<string> {
    this.clearTokenTimer();
    const timeoutMs = this.options.connectTimeoutMs;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`getToken() did not settle within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.tokenTimer = timer;
      new Promise<string>((settle) => settle(this.options.getToken()))
        .then(resolve, reject)
        .finally(() => {
          clearTimeout(timer);
          if (this.tokenTimer === timer) this.tokenTimer = undefined;
        });
    });
  }

  private clearTokenTimer(): void {
    if (this.tokenTimer === undefined) return;
    clearTimeout(this.tokenTimer);
    this.tokenTimer = undefined;
  }

  private afterConnectionLost(code: number, reason: string, decision: 'reconnect' | 'stop'): void {
    if (this.announceClose(code, reason, decision)) {
      this.reconnects.schedule(() => void this.openSocket());
    }
  }

  /** Emits `close`; then either gives up or turns `reconnecting` (true: a reconnect is due). */
  private announceClose(code: number, reason: string, decision: 'reconnect' | 'stop'): boolean {
    const willReconnect = decision === 'reconnect' && this.reconnects.hasAttemptsLeft;
    const generation = this.generation;
    this.listeners.emit('close', { code, reason, willReconnect });
    // A `close` listener may have called close(): nothing is left to do.
    if (generation !== this.generation) return false;
    if (!willReconnect) {
      this.giveUp(closedError(code, reason));
      return false;
    }
    this.stateMachine.set('reconnecting');
    return true;
  }

  private giveUp(error: RealtimeClientError): void {
    this.reconnects.cancel();
    this.socket.stopConnectTimer();
    this.liveness.stop();
    this.hooks.onGiveUp(error);
  }
}

function closedError(code: number, reason: string): RealtimeClientError {
  return new RealtimeClientError(
    ClientErrorCode.CONNECTION_CLOSED,
    `Connection closed (${describeClose(code, reason)})`,
    { closeCode: code },
  );
}
