import { Inject, Injectable } from '@nestjs/common';
import { WebSocket } from 'ws';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { RealtimeEvents } from '../realtime-events.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import { connectionOf, type RealtimeConnection } from '../registry/realtime-connection.js';
import { TokenExpirySchedule } from '../registry/token-expiry-schedule.js';

/**
 * Ends connections: unregisters at once (so limits and counts are right immediately), starts the
 * WebSocket close, and drops the socket after a grace if the peer never completes the close.
 */
@Injectable()
export class ConnectionCloser {
  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly registry: ConnectionRegistry,
    private readonly expiry: TokenExpirySchedule,
    private readonly events: RealtimeEvents,
  ) {}

  close(connection: RealtimeConnection, code: number, reason: string): void {
    if (connection.closing) return;
    connection.closing = true;
    this.forget(connection, code, reason);
    this.closeSocket(connection.socket, code, reason);
  }

  /** Closes a socket that may never have been admitted. */
  closeSocket(socket: WebSocket, code: number, reason: string): void {
    if (socket.readyState === WebSocket.CLOSED) return;
    try {
      socket.close(code, reason);
    } catch {
      socket.terminate();
      return;
    }
    setTimeout(() => socket.terminate(), this.options.closeGraceMs).unref();
  }

  /** Called when a socket's close completed, whoever started it. */
  onSocketClosed(socket: WebSocket, code: number, reason: string): void {
    const connection = connectionOf(socket);
    if (!connection) return;
    connection.closing = true;
    this.forget(connection, code, reason);
  }

  private forget(connection: RealtimeConnection, code: number, reason: string): void {
    if (!this.registry.remove(connection)) return;
    this.expiry.remove(connection);
    if (!this.events.closed.observed) return;
    this.events.closed.next({
      connectionId: connection.id,
      userId: connection.userId,
      code,
      reason,
    });
  }
}
