import { type INestApplication, Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Server as HttpServer } from 'node:http';
import type { Observable } from 'rxjs';
import type { WebSocket, WebSocketServer } from 'ws';
import { type BoundMessageHandler, connectionOf } from '../registry/realtime-connection.js';
import { compileDirectHandlers } from './direct-handlers.js';
import { SharedHandlerMaps } from './shared-handler-maps.js';
import { type GatewayConnectHandler, GatewayConnector } from './gateway-connector.js';
import { gatewayFacts } from './quiet-gateways.js';
import { RealtimeSocketServer } from './realtime-socket-server.js';

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
  /** Handlers compiled once, by message type, in place of Nest's per-message pipeline. */
  private direct: Map<string, BoundMessageHandler> | undefined;
  /** Handler maps made only of direct handlers are the same for every connection: one each. */
  private readonly sharedHandlers = new SharedHandlerMaps();
  /** Runs the gateways' connect callbacks, or for quiet gateways only what they would do. */
  private readonly gateways = new GatewayConnector(
    () => gatewayFacts(this.app),
    (before, handlers) =>
      this.sharedHandlers.after(before, handlers, (this.direct ??= this.compileDirect())),
  );

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
    this.endpoint.connectGatewaysWith(this.gateways);
    return this.endpoint.attach(this.app.getHttpServer() as HttpServer);
  }

  override bindClientConnect(_server: WebSocketServer, callback: GatewayConnectHandler): void {
    this.gateways.add(callback);
  }

  /** As Nest's, watched by the connector while it learns which gateways are quiet. */
  override bindClientDisconnect(client: WebSocket, callback: (reason: unknown) => void): void {
    this.gateways.sawDisconnectHook(client);
    super.bindClientDisconnect(client, callback);
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    _transform: (data: unknown) => Observable<unknown>,
  ): void {
    const connection = connectionOf(client);
    if (!connection) return;
    // Every gateway is initialised by the first connection: compile then, once for the app.
    const direct = (this.direct ??= this.compileDirect());
    const before = connection.handlers;
    const allDirect = handlers.every(({ message }) => direct.has(String(message)));
    this.gateways.sawMessageHandlers(client, handlers, allDirect);
    if (allDirect) {
      connection.handlers = this.sharedHandlers.after(before, handlers, direct);
      return;
    }
    // A handler on Nest's path is bound to this socket: this connection needs its own map.
    const own = before && !this.sharedHandlers.isShared(before) ? before : new Map(before);
    for (const { message, callback } of handlers) {
      const type = String(message);
      own.set(type, direct.get(type) ?? (callback as BoundMessageHandler));
    }
    connection.handlers = own;
  }

  private compileDirect(): Map<string, BoundMessageHandler> {
    try {
      return compileDirectHandlers(this.app);
    } catch (error) {
      // Nest's own per-message pipeline still works: slower, never wrong.
      new Logger('RealtimeWsAdapter').warn({
        event: 'direct_handlers.unavailable',
        error: error instanceof Error ? error.message : String(error),
      });
      return new Map();
    }
  }

  override async close(): Promise<void> {
    await this.endpoint?.close();
  }

  override async dispose(): Promise<void> {
    await this.endpoint?.close();
  }
}
