import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, type ServerOptions, WebSocket, WebSocketServer } from 'ws';
import type { ConnectionEstablishedData, ConnectionLimits } from '../../protocol/index.js';
import { BEARER_PROTOCOL, pathToken, requestTarget } from '../auth/token-extractor.js';
import {
  announcedLimits,
  REALTIME_OPTIONS,
  type ResolvedRealtimeOptions,
} from '../realtime-options.js';
import {
  connectionOf,
  peerAddress,
  type RealtimeConnection,
} from '../registry/realtime-connection.js';
import { ConnectionAdmission } from './connection-admission.js';
import { ConnectionCloser } from './connection-closer.js';
import { MessageDispatcher } from './message-dispatcher.js';
import { isoNow } from './iso-clock.js';
import { giveProtocolErrorsAReason } from './protocol-error-closer.js';
import { skipSecondReceiverEnd } from './receiver-end-guard.js';
import { reuseFragments } from './receiver-fragments.js';
import { SocketWriter } from './socket-writer.js';
import { refuseTooManyUpgrades, UpgradeRateLimiter } from './upgrade-rate-limiter.js';
import { refuseUpgrade } from './upgrade-refusal.js';
import { monotonicNow } from '../monotonic-clock.js';

/** Hands each admitted socket to the app's gateways: the adapter's GatewayConnector. */
export interface GatewayConnections {
  connect(socket: WebSocket, request: IncomingMessage, connection: RealtimeConnection): void;
}

/** Bound on receiving the upgrade request's headers (PROTOCOL.md section 1). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** How often Node checks for stalled requests, which bounds how late the handshake timeout acts. */
const HANDSHAKE_CHECK_INTERVAL_MS = 1_000;

/**
 * The one WebSocket endpoint on the host's HTTP server: routes upgrades on `path` and
 * `path/<token>`, admits sockets, then hands them to every gateway and to the dispatcher.
 */
@Injectable()
export class RealtimeSocketServer {
  private readonly logger = new Logger('RealtimeSocketServer');
  private server: WebSocketServer | undefined;
  private httpServer: HttpServer | undefined;
  private gateways: GatewayConnections | undefined;
  private readonly upgradeRate: UpgradeRateLimiter;
  /** The same for every connection: made once. */
  private readonly limits: ConnectionLimits;
  /** `"features":…,"limits":…` of connection.established for the last handler map seen. */
  private establishedShared: { handlers: RealtimeConnection['handlers']; json: string } | undefined;
  // Listeners shared by every socket (the socket is `this`): no closure per connection.
  private readonly onMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void;
  private readonly onClose: (this: WebSocket, code: number, reason: Buffer) => void;
  private readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void =>
    this.routeUpgrade(request, socket, head);

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly admission: ConnectionAdmission,
    private readonly dispatcher: MessageDispatcher,
    private readonly closer: ConnectionCloser,
    private readonly writer: SocketWriter,
  ) {
    this.upgradeRate = new UpgradeRateLimiter(options.maxConnectionsPerIpPerSecond);
    this.limits = announcedLimits(options);
    const { dispatcher: dispatch, closer: close } = this;
    this.onMessage = function (data, isBinary) {
      const connection = connectionOf(this);
      if (!connection) return;
      connection.fragments = reuseFragments(this, data, connection.fragments);
      dispatch.receive(connection, data, isBinary);
    };
    this.onClose = function (code, reason) {
      close.onSocketClosed(this, code, reason.toString());
    };
  }

  /** Creates the endpoint on `httpServer` once; every gateway shares it. */
  attach(httpServer: HttpServer): WebSocketServer {
    if (this.server) return this.server;
    this.httpServer = httpServer;
    const serverOptions: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      maxPayload: this.options.maxMessageSize,
      perMessageDeflate: false,
      handleProtocols: (offered) => (offered.has(BEARER_PROTOCOL) ? BEARER_PROTOCOL : false),
      // How long ws waits for the peer's side of a closing socket before destroying it, whoever
      // started the close: the grace of every close. ws's default, 30 s, held a peer that sent a
      // close frame and then never read, its connection still counted against every limit.
      closeTimeout: this.options.closeGraceMs,
    };
    this.server = new WebSocketServer(serverOptions);
    this.server.on('connection', (socket: WebSocket, request: IncomingMessage) =>
      this.onConnection(socket, request),
    );
    this.server.on('error', (error) =>
      this.logger.error({ event: 'server.error', error: error.message }),
    );
    httpServer.headersTimeout = Math.min(
      httpServer.headersTimeout || Infinity,
      HANDSHAKE_TIMEOUT_MS,
    );
    // Node enforces headersTimeout only when it checks connections (every 30 s by default), so a
    // stalled upgrade would live up to 40 s; read at listen(), which comes after attach().
    // (a public property of http.Server since Node 18.12 that @types/node does not declare)
    const checked = httpServer as HttpServer & { connectionsCheckingInterval?: number };
    checked.connectionsCheckingInterval = Math.min(
      checked.connectionsCheckingInterval || Infinity,
      HANDSHAKE_CHECK_INTERVAL_MS,
    );
    httpServer.on('upgrade', this.onUpgrade);
    return this.server;
  }

  /** Sets what hands every admitted connection to the gateways. */
  connectGatewaysWith(gateways: GatewayConnections): void {
    this.gateways = gateways;
  }

  /** Ends sockets still open and stops taking upgrades. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.httpServer?.off('upgrade', this.onUpgrade);
    for (const socket of server.clients) socket.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.server = undefined;
  }

  private routeUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const server = this.server;
    if (!server) return;
    const pathname = requestTarget(request)?.pathname;
    const { path } = this.options;
    if (pathname === path || (pathname !== undefined && pathToken(pathname, path) !== undefined)) {
      // Before the handshake and the token check, so that a flood costs as little as possible.
      // Off (the default), the peer's address is not read: that is a syscall (getpeername).
      if (this.upgradeRate.enabled) {
        const retryAfter = this.upgradeRate.admit(peerAddress(request.socket));
        if (retryAfter > 0) return refuseTooManyUpgrades(socket, retryAfter);
      }
      // Corked: the 101 response and connection.established (or the refusal) leave in one write.
      socket.cork();
      server.handleUpgrade(request, socket, head, (ws) => server.emit('connection', ws, request));
      socket.uncork();
    } else if (this.httpServer?.listenerCount('upgrade') === 1) {
      // No other endpoint will answer: refuse rather than leave the socket hanging.
      refuseUpgrade(socket, '404 Not Found');
    }
  }

  private onConnection(socket: WebSocket, request: IncomingMessage): void {
    socket.on('error', onSocketError);
    giveProtocolErrorsAReason(socket);
    skipSecondReceiverEnd(socket);
    const connection = this.admission.admit(socket, request);
    if (!connection) return;
    socket.on('message', this.onMessage);
    socket.on('pong', onLivenessFrame);
    socket.on('ping', onLivenessFrame);
    socket.on('close', this.onClose);
    this.gateways?.connect(socket, request, connection);
    this.writer.sendEstablished(connection, this.establishedJson(connection));
  }

  /** ConnectionEstablishedData as JSON; its `features` and `limits` are encoded once. */
  private establishedJson(connection: RealtimeConnection): string {
    const { handlers } = connection;
    let shared = this.establishedShared;
    // Connections share their handler map (one per set of gateways, never changed once made),
    // hence one cached text; a connection with a map of its own just misses.
    if (!shared || shared.handlers !== handlers) {
      const constant: Pick<ConnectionEstablishedData, 'features' | 'limits'> = {
        features: [...(handlers?.keys() ?? [])],
        limits: this.limits,
      };
      shared = { handlers, json: JSON.stringify(constant).slice(1, -1) };
      this.establishedShared = shared;
    }
    const id = JSON.stringify(connection.id);
    const user = JSON.stringify(connection.userId);
    return `{"connection_id":${id},"user_id":${user},"server_time":"${isoNow()}",${shared.json}}`;
  }
}

function onLivenessFrame(this: WebSocket): void {
  const connection = connectionOf(this);
  if (!connection) return;
  connection.lastActivity = connection.lastHeartbeat = monotonicNow();
}

// A peer's protocol error is routine on a public endpoint; the close code tells the peer.
function onSocketError(): void {}
