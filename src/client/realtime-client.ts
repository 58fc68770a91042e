import {
  CloseCode,
  CloseReason,
  type ConnectionEstablishedData,
  type JsonObject,
  type ServerEnvelope,
  type SubscriptionAcknowledgedData,
  type UnsubscriptionAcknowledgedData,
} from '../protocol/index.js';
import { ConnectWaiters } from './connect-waiters.js';
import { ConnectionLifecycle } from './connection-lifecycle.js';
import { type ConnectionState, ConnectionStateMachine } from './connection-state.js';
import { closeQuietly } from './current-socket.js';
import { ClientErrorCode, describeClose, errorMessage, RealtimeClientError } from './errors.js';
import { ListenerRegistry, type StoredListener } from './event-emitter.js';
import type { ClientEventHandler } from './events.js';
import { type RealtimeClientOptions, resolveOptions, type ResolvedOptions } from './options.js';
import { Outbox, type QueuedSend } from './outbox.js';
import { malformedReply, subscriptionAck } from './reply-shapes.js';
import { RequestIds } from './request-ids.js';
import { RequestTracker } from './request-tracker.js';
import { emitServerEvent } from './server-events.js';
import { StreamRecovery } from './stream-recovery.js';
import { SubscriptionSet } from './subscription-set.js';
import { encodeFrame } from './wire.js';

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
  private readonly lifecycle: ConnectionLifecycle;
  private readonly outbox: Outbox;
  private readonly requests = new RequestTracker();
  private readonly ids = new RequestIds();
  private readonly subscriptions = new SubscriptionSet();
  private readonly connectWaiters = new ConnectWaiters();
  private readonly recovery: StreamRecovery;

  constructor(options: RealtimeClientOptions) {
    this.options = resolveOptions(options);
    this.listeners = new ListenerRegistry(this.options.onListenerError);
    this.stateMachine = new ConnectionStateMachine((change) =>
      this.listeners.emit('state', change),
    );
    this.lifecycle = new ConnectionLifecycle(this.options, this.listeners, this.stateMachine, {
      onMessage: (envelope) => this.onMessage(envelope),
      onSocketLost: (code, reason) => this.rejectSentRequests(code, reason),
      onTooLarge: () => this.recovery.refusedTooLarge(),
      onGiveUp: (error) => this.finish(error),
    });
    this.recovery = new StreamRecovery(this.options.resume, {
      requestResume: (data) => this.requestPastOutbox('resume', data),
      deliver: (envelope) => this.deliver(envelope),
      resumed: (result) => this.listeners.emit('resumed', result),
      resync: (streams) => this.listeners.emit('resync', { streams }),
      error: (error) => this.listeners.emit('error', error),
    });
    this.outbox = new Outbox(
      this.options.maxQueuedMessages,
      (frame) => this.lifecycle.write(frame),
      () => this.state,
    );
  }

  get state(): ConnectionState {
    return this.stateMachine.state;
  }

  /** `connection.established` data of the current connection, while there is one. */
  get connection(): ConnectionEstablishedData | undefined {
    return this.lifecycle.connection;
  }

  /** Events currently subscribed (acknowledged by the server). */
  get subscribedEvents(): string[] {
    return this.subscriptions.list();
  }

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

  /**
   * Connects (if not already connecting) and resolves once the connection is `open`; rejects
   * when the client ends up `closed` first (refused token, non-retryable close, `close()`).
   * Calls made until then get the same promise: retrying through an outage costs nothing.
   */
  connect(): Promise<ConnectionEstablishedData> {
    const established = this.lifecycle.connection;
    if (this.state === 'open' && established) return Promise.resolve(established);
    const promise = this.connectWaiters.wait();
    if (this.state === 'closed') this.lifecycle.start();
    return promise;
  }

  /** Closes the connection for good: stops every timer, rejects everything pending. */
  close(): void {
    const socket = this.lifecycle.stop();
    const closed = () =>
      new RealtimeClientError(ClientErrorCode.CLIENT_CLOSED, 'The client was closed');
    this.outbox.rejectAll(closed);
    this.requests.rejectAll(closed);
    if (socket) {
      closeQuietly(socket, CloseCode.NORMAL, CloseReason.NORMAL);
      this.listeners.emit('close', {
        code: CloseCode.NORMAL,
        reason: CloseReason.NORMAL,
        willReconnect: false,
      });
    }
    this.connectWaiters.rejectAll(closed());
    this.stateMachine.set('closed');
  }

  /** Subscribes to events; resolves with the acknowledgement (rejects when none was accepted). */
  async subscribe(events: readonly string[]): Promise<SubscriptionAcknowledgedData> {
    const reply = await this.request('subscribe', { events: [...events] });
    const ack = subscriptionAck(reply.data);
    if (!ack) {
      throw malformedReply(reply.type, reply.in_reply_to);
    }
    // The server follows an all-refused acknowledgement with a SUBSCRIPTION_FAILED error that
    // answers the same id; rejecting here gives the caller that outcome.
    if (ack.events.length === 0) {
      throw new RealtimeClientError(
        'SUBSCRIPTION_FAILED',
        `No event could be subscribed: ${ack.invalid_events.join(', ')}`,
        { requestId: reply.in_reply_to },
      );
    }
    this.subscriptions.add(ack.events);
    return ack;
  }

  async unsubscribe(events: readonly string[]): Promise<UnsubscriptionAcknowledgedData> {
    // Forgotten first: even when the reply is lost, a reconnect must not bring them back.
    this.subscriptions.delete(events);
    this.recovery.forgetEvents(events);
    const reply = await this.request('unsubscribe', { events: [...events] });
    return reply.data as unknown as UnsubscriptionAcknowledgedData;
  }

  /** Sends a `ping`; resolves with the round-trip time in milliseconds. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.request('ping', { pingId: `ping_${this.ids.issued + 1}` });
    return performance.now() - started;
  }

  /**
   * Sends a message with a fresh `id` and resolves with the reply that carries it in
   * `in_reply_to`; an `error` reply rejects with a {@link RealtimeClientError}.
   */
  request(type: string, data?: JsonObject): Promise<ServerEnvelope> {
    const id = this.ids.next();
    // Filled in once dispatched: a request that times out in the queue must leave it.
    const queued: { item?: QueuedSend } = {};
    const reply = this.requests.track(id, type, this.options.requestTimeoutMs, () => {
      if (queued.item) this.outbox.remove(queued.item);
    });
    queued.item = this.outbox.dispatch(encodeFrame(type, data, id), {
      onSent: () => this.requests.markSent(id),
      onDropped: (error) => this.requests.reject(id, error),
    });
    return reply;
  }

  /** Sends a message that expects no reply; resolves once it is written to the socket. */
  send(type: string, data?: JsonObject): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.outbox.dispatch(encodeFrame(type, data), { onSent: resolve, onDropped: reject });
    });
  }

  private onMessage(envelope: ServerEnvelope): void {
    if (envelope.type === 'connection.established') {
      this.onEstablished(envelope.data as unknown as ConnectionEstablishedData);
    }
    this.recovery.receive(envelope);
  }

  private deliver(envelope: ServerEnvelope): void {
    this.listeners.emit('message', envelope);
    this.requests.settle(envelope);
    emitServerEvent(this.listeners, envelope);
  }

  /** Turns `open` only once every subscription is restored and the gap replayed. */
  private onEstablished(data: ConnectionEstablishedData): void {
    const socket = this.lifecycle.currentSocket;
    this.lifecycle.accept(data);
    this.recovery.begin();
    this.listeners.emit('established', data);
    const restored = this.subscriptions
      .restore(
        (events) => this.requestPastOutbox('subscribe', { events }),
        (error) => this.listeners.emit('error', error),
      )
      .then(() => this.recovery.resume());
    const turnOpen = () => {
      if (socket !== this.lifecycle.currentSocket || this.state === 'closed') return;
      this.stateMachine.set('open');
      this.connectWaiters.resolveAll(data);
      this.outbox.flush();
    };
    // A failure of the restore must neither go unhandled nor keep a live connection from
    // turning open: it is reported, and the connection goes on with what was restored.
    void restored.then(turnOpen, (error: unknown) => {
      this.listeners.emit(
        'error',
        error instanceof RealtimeClientError
          ? error
          : new RealtimeClientError(
              ClientErrorCode.INVALID_SERVER_MESSAGE,
              `Restoring the connection failed: ${errorMessage(error)}`,
            ),
      );
      turnOpen();
    });
  }

  /** Writes past the outbox: the state is not `open` yet while the connection is restored. */
  private requestPastOutbox(type: string, data: JsonObject): Promise<ServerEnvelope> {
    const id = this.ids.next();
    const reply = this.requests.track(id, type, this.options.requestTimeoutMs);
    this.requests.markSent(id);
    if (!this.lifecycle.write(encodeFrame(type, data, id))) {
      // The socket is already gone: no reply can come, and the next connection starts over.
      this.requests.reject(
        id,
        new RealtimeClientError(
          ClientErrorCode.CONNECTION_CLOSED,
          `Connection lost before ${type}`,
          {
            requestId: id,
          },
        ),
      );
    }
    return reply;
  }

  /** The connection that carried them closed, so their replies can never come. */
  private rejectSentRequests(code: number, reason: string): void {
    this.requests.rejectAll(
      (id, type) =>
        new RealtimeClientError(
          ClientErrorCode.CONNECTION_CLOSED,
          `Connection closed (${describeClose(code, reason)}) before the reply to ${type}`,
          { closeCode: code, requestId: id },
        ),
      true,
    );
  }

  /** Ends up `closed` without a `close()` call: nothing will be retried. */
  private finish(error: RealtimeClientError): void {
    this.outbox.rejectAll(() => error);
    this.requests.rejectAll(() => error);
    this.connectWaiters.rejectAll(error);
    this.stateMachine.set('closed');
  }
}
