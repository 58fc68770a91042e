import { Injectable } from '@nestjs/common';
import { WebSocket } from 'ws';
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

  /**
   * Closes a socket that may never have been admitted. ws destroys it `closeGraceMs` after the
   * close if the peer has not completed it (the server's `closeTimeout`), and drops that timer
   * as soon as the socket closes: a timer here kept every closed socket alive for the grace.
   */
  closeSocket(socket: WebSocket, code: number, reason: string): void {
    if (socket.readyState === WebSocket.CLOSED) return;
    try {
      socket.close(code, reason);
    } catch {
      socket.terminate();
    }
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
