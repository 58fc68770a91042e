import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { CloseCode, CloseReason, ServerMessageType } from '../../protocol/index.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import { ConnectionAdmission } from './connection-admission.js';
import { ConnectionCloser } from './connection-closer.js';
import { SocketWriter } from './socket-writer.js';

/**
 * On app close: refuse new sockets, tell every client (`system.maintenance`), close them with
 * 1001, and wait for the closes at most `closeGraceMs` (sockets still open are then dropped).
 */
@Injectable()
export class GracefulShutdown implements BeforeApplicationShutdown {
  private readonly logger = new Logger('RealtimeShutdown');

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly registry: ConnectionRegistry,
    private readonly admission: ConnectionAdmission,
    private readonly writer: SocketWriter,
    private readonly closer: ConnectionCloser,
  ) {}

  async beforeApplicationShutdown(): Promise<void> {
    this.admission.stopAccepting();
    const connections = [...this.registry.all()];
    const closed = connections
      .filter((c) => c.socket.readyState !== WebSocket.CLOSED)
      .map((c) => once(c.socket, 'close').catch(() => undefined));
    for (const connection of connections) {
      this.writer.send(connection, ServerMessageType.SYSTEM_MAINTENANCE, {
        message: 'The server is shutting down; reconnect shortly',
        timestamp: new Date().toISOString(),
      });
      this.closer.close(connection, CloseCode.GOING_AWAY, CloseReason.GOING_AWAY);
    }
    const grace = sleep(this.options.closeGraceMs + 100, undefined, { ref: false });
    await Promise.race([Promise.all(closed), grace]);
    this.logger.log({ event: 'shutdown.closed_connections', count: connections.length });
  }
}
