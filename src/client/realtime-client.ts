import {
  type ClientEnvelope,
  CloseCode,
  CloseReason,
  type ConnectionEstablishedData,
  type ConnectionLimits,
  type ErrorData,
  isJsonObject,
  type JsonObject,
  MAX_EVENTS_PER_REQUEST,
  type ServerEnvelope,
  type SubscriptionAcknowledgedData,
  type UnsubscriptionAcknowledgedData,
} from '../protocol/index.js';
import { reconnectDelayMs } from './backoff.js';
import { closeDecision } from './close-policy.js';
import { type ConnectionState, ConnectionStateMachine } from './connection-state.js';
import { ClientErrorCode, RealtimeClientError } from './errors.js';
import { ListenerRegistry, type StoredListener } from './event-emitter.js';
import type { ClientEventHandler, LifecycleEvents } from './events.js';
import {
  connectUrl,
  defaults,
  type RealtimeClientOptions,
  resolveOptions,
  type ResolvedOptions,
  WEBSOCKET_OPEN,
  type WebSocketLike,
} from './options.js';
import { RequestTracker } from './request-tracker.js';
import { BoundedQueue } from './send-queue.js';

/** A frame waiting in the send queue, with what to tell its sender once it leaves the queue. */
interface QueuedSend {
  frame: string;
  onSent: () => void;
  onDropped: (error: RealtimeClientError) => void;
}

interface ConnectWaiter {
  resolve: (data: ConnectionEstablishedData) => void;
  reject: (error: RealtimeClientError) => void;
}

/** Server message types that would be confused with the client's own lifecycle events. */
const LIFECYCLE_EVENT_NAMES: ReadonlySet<string> = new Set<keyof LifecycleEvents>([
  'state',
  'message',
  'error',
  'established',
  'close',
]);

/**
 * Client of the realtime protocol (PROTOCOL.md) for browsers and Node. It authenticates with a
 * token from `getToken()`, reconnects with backoff where the close code allows it, restores
 * subscriptions after a reconnect, correlates requests with replies and keeps the connection
 * alive with heartbeats.
 */
export class RealtimeClient {
  private readonly options: ResolvedOptions;
  private readonly listeners: ListenerRegistry;
  private readonly stateMachine: ConnectionStateMachine;
  private readonly requests = new RequestTracker();
  private readonly queue: BoundedQueue<QueuedSend>;
  /** Events the server acknowledged; sent again after every reconnect. */
  private readonly subscriptions = new Set<string>();
  private connectWaiters: ConnectWaiter[] = [];

  private socket: WebSocketLike | undefined;
  /** The token the current socket was opened with, to compare after a 4001. */
  private socketToken: string | undefined;
  private established: ConnectionEstablishedData | undefined;
  private lastReceivedAt = 0;
  private reconnectAttempt = 0;
  /** Bumped by `close()`, so that an awaited `getToken()` that finishes later is ignored. */
  private generation = 0;
  private requestCounter = 0;
  private readonly idPrefix = Math.random().toString(36).slice(2, 8);

  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: RealtimeClientOptions) {
    this.options = resolveOptions(options);
    this.listeners = new ListenerRegistry(this.options.onListenerError);
    this.stateMachine = new ConnectionStateMachine((change) =>
      this.listeners.emit('state', change),
    );
    this.queue = new BoundedQueue(this.options.maxQueuedMessages);
  }

  get state(): ConnectionState {
    return this.stateMachine.state;
  }

  /** `connection.established` data of the current connection, while there is one. */
  get connection(): ConnectionEstablishedData | undefined {
    return this.established;
  }

  /** Events currently subscribed (acknowledged by the server). */
  get subscribedEvents(): string[] {
    return [...this.subscriptions];
  }

  // Listeners

  on<K extends string>(type: K, handler: ClientEventHandler<K>): this {
    this.listeners.on(type, handler as StoredListener);
    return this;
  }

  once<K extends string>(type: K, handler: ClientEventHandler<K>): this {
    this.listeners.once(type, handler as StoredListener);
    return this;
  }

  off<K extends string>(type: K, handler: ClientEventHandler<K>): this {
    this.listeners.off(type, handler as StoredListener);
    return this;
  }

  // Connection

  /**
   * Connects (if not already connecting) and resolves once the connection is `open`; rejects
   * when the client ends up `closed` first (refused token, non-retryable close, `close()`).
   */
  connect(): Promise<ConnectionEstablishedData> {
    if (this.state === 'open' && this.established) return Promise.resolve(this.established);
    const promise = new Promise<ConnectionEstablishedData>((resolve, reject) => {
      this.connectWaiters.push({ resolve, reject });
    });
    if (this.state === 'closed') {
      this.reconnectAttempt = 0;
      this.setState('connecting');
      void this.openSocket();
    }
    return promise;
  }

  /** Closes the connection for good: stops every timer, rejects everything pending. */
  close(): void {
    this.generation++;
    this.clearTimer('reconnect');
    this.stopConnectionTimers();
    const socket = this.socket;
    this.socket = undefined;
    this.established = undefined;
    const closed = () =>
      new RealtimeClientError(ClientErrorCode.CLIENT_CLOSED, 'The client was closed');
    this.rejectQueued(closed);
    this.requests.rejectAll(closed);
    if (socket) {
      closeQuietly(socket, CloseCode.NORMAL, CloseReason.NORMAL);
      this.listeners.emit('close', {
        code: CloseCode.NORMAL,
        reason: CloseReason.NORMAL,
        willReconnect: false,
      });
    }
    this.rejectConnectWaiters(closed());
    this.setState('closed');
  }

  // Messages

  /** Subscribes to events; resolves with the acknowledgement (rejects when none was accepted). */
  async subscribe(events: readonly string[]): Promise<SubscriptionAcknowledgedData> {
    const reply = await this.request('subscribe', { events: [...events] });
    const ack = reply.data as unknown as SubscriptionAcknowledgedData;
    // The server follows an all-refused acknowledgement with a SUBSCRIPTION_FAILED error that
    // answers the same id; rejecting here gives the caller that outcome.
    if (ack.events.length === 0) {
      throw new RealtimeClientError(
        'SUBSCRIPTION_FAILED',
        `No event could be subscribed: ${ack.invalid_events.join(', ')}`,
        { requestId: reply.in_reply_to },
      );
    }
    for (const event of ack.events) this.subscriptions.add(event);
    return ack;
  }

  async unsubscribe(events: readonly string[]): Promise<UnsubscriptionAcknowledgedData> {
    // Forgotten first: even when the reply is lost, a reconnect must not bring them back.
    for (const event of events) this.subscriptions.delete(event);
    const reply = await this.request('unsubscribe', { events: [...events] });
    return reply.data as unknown as UnsubscriptionAcknowledgedData;
  }

  /** Sends a `ping`; resolves with the round-trip time in milliseconds. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.request('ping', { pingId: `ping_${this.requestCounter + 1}` });
    return performance.now() - started;
  }

  /**
   * Sends a message with a fresh `id` and resolves with the reply that carries it in
   * `in_reply_to`; an `error` reply rejects with a {@link RealtimeClientError}.
   */
  request(type: string, data?: JsonObject): Promise<ServerEnvelope> {
    const id = `${this.idPrefix}_${++this.requestCounter}`;
    const envelope: ClientEnvelope = { type, id, ...(data === undefined ? {} : { data }) };
    const frame = JSON.stringify(envelope);
    // Filled in once dispatched: a request that times out in the queue must leave it.
    const queued: { item?: QueuedSend } = {};
    const reply = this.requests.track(id, type, this.options.requestTimeoutMs, () => {
      if (queued.item) this.queue.remove(queued.item);
    });
    queued.item = this.dispatch(frame, {
      onSent: () => this.requests.markSent(id),
      onDropped: (error) => this.requests.reject(id, error),
    });
    return reply;
  }

  /** Sends a message that expects no reply; resolves once it is written to the socket. */
  send(type: string, data?: JsonObject): Promise<void> {
    const frame = JSON.stringify({ type, ...(data === undefined ? {} : { data }) });
    return new Promise<void>((resolve, reject) => {
      this.dispatch(frame, { onSent: resolve, onDropped: reject });
    });
  }

  // Internals

  private setState(newState: ConnectionState): void {
    this.stateMachine.set(newState);
  }

  /** Writes now when open, queues while (re)connecting when the queue is on, else refuses. */
  private dispatch(frame: string, callbacks: Omit<QueuedSend, 'frame'>): QueuedSend | undefined {
    if (this.state === 'open' && this.writeFrame(frame)) {
      callbacks.onSent();
      return undefined;
    }
    const item: QueuedSend = { frame, ...callbacks };
    if (this.state === 'closed' || this.queue.capacity <= 0) {
      item.onDropped(
        new RealtimeClientError(ClientErrorCode.NOT_CONNECTED, `Not connected (${this.state})`),
      );
      return undefined;
    }
    for (const dropped of this.queue.push(item)) {
      dropped.onDropped(
        new RealtimeClientError(
          ClientErrorCode.QUEUE_OVERFLOW,
          `Dropped from the send queue (over ${this.queue.capacity} messages)`,
        ),
      );
    }
    return item;
  }

  private writeFrame(frame: string): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WEBSOCKET_OPEN) return false;
    socket.send(frame);
    return true;
  }

  private flushQueue(): void {
    for (const item of this.queue.drain()) {
      if (this.writeFrame(item.frame)) item.onSent();
      else
        item.onDropped(
          new RealtimeClientError(ClientErrorCode.CONNECTION_CLOSED, 'Connection lost'),
        );
    }
  }

  private rejectQueued(makeError: () => RealtimeClientError): void {
    for (const item of this.queue.drain()) item.onDropped(makeError());
  }

  private async openSocket(presetToken?: string): Promise<void> {
    const generation = this.generation;
    let token: string;
    try {
      token = presetToken ?? (await this.options.getToken());
    } catch (error) {
      if (generation !== this.generation) return;
      this.listeners.emit(
        'error',
        new RealtimeClientError(
          ClientErrorCode.TOKEN_UNAVAILABLE,
          `getToken() failed: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
      this.afterConnectionLost(CloseCode.INTERNAL_ERROR, 'getToken() failed', 'reconnect');
      return;
    }
    if (generation !== this.generation) return;

    const { url, tokenTransport, WebSocket: WebSocketImpl } = this.options;
    let socket: WebSocketLike;
    try {
      socket =
        tokenTransport === 'subprotocol'
          ? new WebSocketImpl(url, ['bearer', token])
          : new WebSocketImpl(connectUrl(url, token, tokenTransport));
    } catch (error) {
      // A malformed URL cannot get better by retrying.
      const failure = new RealtimeClientError(
        ClientErrorCode.CONNECTION_CLOSED,
        `Cannot open ${url}: ${error instanceof Error ? error.message : String(error)}`,
      );
      this.listeners.emit('error', failure);
      this.finish(failure);
      return;
    }
    this.socket = socket;
    this.socketToken = token;
    this.lastReceivedAt = performance.now();
    // Every listener checks that its socket is still the current one: a socket that was
    // replaced or dropped may still report events, which must not affect the client.
    socket.addEventListener('message', (event) => {
      if (socket === this.socket) this.onMessage(event.data);
    });
    socket.addEventListener('close', (event) => {
      if (socket === this.socket) this.onSocketClosed(event.code, event.reason);
    });
    // `close` follows every `error`; the listener only exists so that `ws` does not throw.
    socket.addEventListener('error', () => undefined);
    this.connectTimer = setTimeout(() => {
      if (socket === this.socket) this.dropSocket(CloseCode.CONNECTION_TIMEOUT, 'Connect timeout');
    }, this.options.connectTimeoutMs);
  }

  private onMessage(raw: unknown): void {
    // Binary frames are not part of the protocol.
    if (typeof raw !== 'string') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return;
    }
    if (!isJsonObject(parsed) || typeof parsed.type !== 'string') return;
    const envelope = parsed as unknown as ServerEnvelope;
    if (!isJsonObject(envelope.data)) envelope.data = {};
    this.lastReceivedAt = performance.now();

    if (envelope.type === 'connection.established') {
      this.onEstablished(envelope.data as unknown as ConnectionEstablishedData);
    }
    this.listeners.emit('message', envelope);
    this.requests.settle(envelope);
    if (envelope.type === 'error') {
      // An error that answers a request belongs to that request (even one that timed out).
      if (envelope.in_reply_to === undefined) {
        const data = envelope.data as Partial<ErrorData>;
        this.listeners.emit(
          'error',
          new RealtimeClientError(String(data.code ?? 'UNKNOWN_ERROR'), String(data.message), {
            resetTime: data.reset_time,
          }),
        );
      }
      return;
    }
    if (!LIFECYCLE_EVENT_NAMES.has(envelope.type)) {
      this.listeners.emit(envelope.type, envelope.data, envelope);
    }
  }

  private onEstablished(data: ConnectionEstablishedData): void {
    const socket = this.socket;
    this.clearTimer('connect');
    this.established = data;
    this.reconnectAttempt = 0;
    this.startHeartbeat(data.limits);
    this.listeners.emit('established', data);
    void this.restoreSubscriptions().then(() => {
      if (socket !== this.socket || this.state === 'closed') return;
      this.setState('open');
      const waiters = this.connectWaiters;
      this.connectWaiters = [];
      for (const waiter of waiters) waiter.resolve(data);
      this.flushQueue();
    });
  }

  /** Subscribes again to every event, before the state turns `open`. */
  private async restoreSubscriptions(): Promise<void> {
    const events = [...this.subscriptions];
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < events.length; i += MAX_EVENTS_PER_REQUEST) {
      const chunk = events.slice(i, i + MAX_EVENTS_PER_REQUEST);
      const id = `${this.idPrefix}_${++this.requestCounter}`;
      const reply = this.requests.track(id, 'subscribe', this.options.requestTimeoutMs);
      this.requests.markSent(id);
      this.writeFrame(JSON.stringify({ type: 'subscribe', id, data: { events: chunk } }));
      sends.push(
        reply.then(
          (envelope) => {
            const ack = envelope.data as unknown as SubscriptionAcknowledgedData;
            // Events the server no longer accepts are forgotten rather than retried forever.
            for (const event of ack.invalid_events ?? []) this.subscriptions.delete(event);
          },
          (error: unknown) => {
            if (error instanceof RealtimeClientError) this.listeners.emit('error', error);
          },
        ),
      );
    }
    await Promise.all(sends);
  }

  private startHeartbeat(limits: ConnectionLimits | undefined): void {
    this.clearTimer('heartbeat');
    const intervalMs = positiveSeconds(limits?.heartbeat_interval) ?? defaults.heartbeatIntervalMs;
    const timeoutMs = positiveSeconds(limits?.connection_timeout) ?? defaults.connectionTimeoutMs;
    this.heartbeatTimer = setInterval(() => {
      const silentMs = performance.now() - this.lastReceivedAt;
      if (silentMs >= timeoutMs) {
        this.dropSocket(CloseCode.CONNECTION_TIMEOUT, CloseReason.CONNECTION_TIMEOUT);
        return;
      }
      // `heartbeat` gets no answer; when the server has been quiet for a whole interval, a
      // `ping` (which also counts as a heartbeat) makes it answer, so that a live but idle
      // server is never mistaken for a dead one.
      const type = silentMs >= intervalMs ? 'ping' : 'heartbeat';
      this.writeFrame(JSON.stringify({ type, data: {} }));
    }, intervalMs);
  }

  /** Gives up on the current socket without waiting for its close handshake. */
  private dropSocket(code: number, reason: string): void {
    const socket = this.socket;
    if (!socket) return;
    this.onSocketClosed(code, reason);
    closeQuietly(socket, code, reason);
  }

  private onSocketClosed(code: number, reason: string): void {
    this.socket = undefined;
    this.established = undefined;
    this.stopConnectionTimers();
    this.requests.rejectAll(
      (id, type) =>
        new RealtimeClientError(
          ClientErrorCode.CONNECTION_CLOSED,
          `Connection closed (${code}${reason ? ` ${reason}` : ''}) before the reply to ${type}`,
          { closeCode: code, requestId: id },
        ),
      true,
    );
    if (this.state === 'closed') return;
    const decision = this.options.reconnect ? closeDecision(code) : 'stop';
    if (decision === 'reconnect-with-new-token') {
      void this.reconnectWithNewToken(code, reason);
      return;
    }
    this.afterConnectionLost(code, reason, decision);
  }

  /** After a 4001: reconnect only when `getToken()` yields a token other than the refused one. */
  private async reconnectWithNewToken(code: number, reason: string): Promise<void> {
    const generation = this.generation;
    const refused = this.socketToken;
    let token: string | undefined;
    try {
      token = await this.options.getToken();
    } catch {
      token = undefined;
    }
    if (generation !== this.generation || this.state === 'closed') return;
    const isNew = token !== undefined && token !== refused;
    this.afterConnectionLost(code, reason, isNew ? 'reconnect' : 'stop', token);
  }

  private afterConnectionLost(
    code: number,
    reason: string,
    decision: 'reconnect' | 'stop',
    presetToken?: string,
  ): void {
    const willReconnect =
      decision === 'reconnect' && this.reconnectAttempt < this.options.maxReconnectAttempts;
    this.listeners.emit('close', { code, reason, willReconnect });
    if (!willReconnect) {
      this.finish(
        new RealtimeClientError(
          ClientErrorCode.CONNECTION_CLOSED,
          `Connection closed (${code}${reason ? ` ${reason}` : ''})`,
          { closeCode: code },
        ),
      );
      return;
    }
    this.setState('reconnecting');
    const delay = reconnectDelayMs(
      this.reconnectAttempt++,
      {
        minDelayMs: this.options.minReconnectDelayMs,
        maxDelayMs: this.options.maxReconnectDelayMs,
      },
      this.options.random,
    );
    this.clearTimer('reconnect');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.openSocket(presetToken);
    }, delay);
  }

  /** Ends up `closed` without a `close()` call: nothing will be retried. */
  private finish(error: RealtimeClientError): void {
    this.clearTimer('reconnect');
    this.stopConnectionTimers();
    this.rejectQueued(() => error);
    this.requests.rejectAll(() => error);
    this.rejectConnectWaiters(error);
    this.setState('closed');
  }

  private rejectConnectWaiters(error: RealtimeClientError): void {
    const waiters = this.connectWaiters;
    this.connectWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private stopConnectionTimers(): void {
    this.clearTimer('connect');
    this.clearTimer('heartbeat');
  }

  private clearTimer(which: 'reconnect' | 'connect' | 'heartbeat'): void {
    if (which === 'reconnect' && this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    } else if (which === 'connect' && this.connectTimer !== undefined) {
      clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
    } else if (which === 'heartbeat' && this.heartbeatTimer !== undefined) {
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = undefined;
    }
  }
}

/** Seconds from `connection.established` as milliseconds, when usable. */
function positiveSeconds(seconds: number | undefined): number | undefined {
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0
    ? seconds * 1000
    : undefined;
}

/**
 * Closes without waiting: `terminate()` where the implementation has it (`ws`, whose `close()`
 * would wait up to 30 s for a dead server's answer), `close()` otherwise. Never throws.
 */
function closeQuietly(socket: WebSocketLike, code: number, reason: string): void {
  try {
    const terminate = (socket as { terminate?: () => void }).terminate;
    if (code !== CloseCode.NORMAL && typeof terminate === 'function') terminate.call(socket);
    else socket.close(code, reason);
  } catch {
    // Already closing or closed: nothing left to release.
  }
}
