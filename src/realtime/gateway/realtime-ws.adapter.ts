import type { INestApplication } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Server as HttpServer } from 'node:http';
import type { Observable } from 'rxjs';
import type { WebSocket, WebSocketServer } from 'ws';
import { type BoundMessageHandler, connectionOf } from '../registry/realtime-connection.js';
import { type GatewayConnectHandler, RealtimeSocketServer } from './realtime-socket-server.js';

/**
 * The WebSocket adapter RealtimeModule needs. Install it before `listen()`:
 *
 * ```ts
 * app.useWebSocketAdapter(new RealtimeWsAdapter(app));
 * ```
 *
 * Every gateway of the app shares the module's endpoint (its path comes from the module's
 * options, not from `@WebSocketGateway`), and messages are dispatched by `type` without a
 * per-connection rxjs pipeline.
 */
export class RealtimeWsAdapter extends WsAdapter {
  private endpoint: RealtimeSocketServer | undefined;

  constructor(private readonly app: INestApplication) {
    super(app);
  }

  override create(port: number): WebSocketServer {
    if (port !== 0) {
      throw new Error(
        'RealtimeWsAdapter serves gateways on the HTTP server: remove the port from @WebSocketGateway()',
      );
    }
    this.endpoint ??= this.app.get(RealtimeSocketServer, { strict: false }) ?? undefined;
    if (!this.endpoint) {
      throw new Error(
        'RealtimeWsAdapter needs RealtimeModule: import RealtimeModule.forRoot() in the app',
      );
    }
    return this.endpoint.attach(this.app.getHttpServer() as HttpServer);
  }

  override bindClientConnect(_server: WebSocketServer, callback: GatewayConnectHandler): void {
    this.endpoint?.addGatewayHandler(callback);
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    _transform: (data: unknown) => Observable<unknown>,
  ): void {
    const connection = connectionOf(client);
    if (!connection) return;
    connection.handlers ??= new Map();
    for (const { message, callback } of handlers) {
      connection.handlers.set(String(message), callback as BoundMessageHandler);
    }
  }

  override async close(): Promise<void> {
    await this.endpoint?.close();
  }

  override async dispose(): Promise<void> {
    await this.endpoint?.close();
  }
}
