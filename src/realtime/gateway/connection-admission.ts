import { Inject, Injectable, Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { CloseCode, CloseReason, ErrorCode } from '../../protocol/index.js';
import { OriginPolicy } from '../auth/origin-policy.js';
import { extractToken } from '../auth/token-extractor.js';
import { TokenVerifier } from '../auth/token-verifier.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { monotonicNow } from '../monotonic-clock.js';
import { randomId } from '../random-id.js';
import { RealtimeEvents } from '../realtime-events.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import {
  attachConnection,
  peerAddress,
  type PeerSocket,
  RealtimeConnection,
} from '../registry/realtime-connection.js';
import { TokenExpirySchedule } from '../registry/token-expiry-schedule.js';
import { ConnectionCloser } from './connection-closer.js';
import { KeyedWindowCounter } from './keyed-window-counter.js';
import { SocketWriter } from './socket-writer.js';

/**
 * Decides whether a freshly upgraded socket becomes a connection, in the order of PROTOCOL.md
 * section 1: origin, token, capacity, then the per-user limit (which evicts the oldest).
 */
@Injectable()
export class ConnectionAdmission {
  private readonly logger = new Logger('RealtimeConnections');
  private readonly origins: OriginPolicy;
  private accepting = true;
  /** Evictions per user and minute: a bound on clients that reconnect at once after 4008. */
  private readonly evictions: KeyedWindowCounter;

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly verifier: TokenVerifier,
    private readonly registry: ConnectionRegistry,
    private readonly expiry: TokenExpirySchedule,
    private readonly closer: ConnectionCloser,
    private readonly writer: SocketWriter,
    private readonly events: RealtimeEvents,
  ) {
    this.origins = new OriginPolicy(options.allowedOrigins);
    this.evictions = new KeyedWindowCounter(options.maxEvictionsPerUserPerMinute, 60_000);
  }

  /** Refuses every later socket with 1001; used while shutting down. */
  stopAccepting(): void {
    this.accepting = false;
  }

  admit(socket: WebSocket, request: IncomingMessage): RealtimeConnection | undefined {
    // Read only where needed (refusals, per-address limits, observers): it is a syscall.
    const peer = request.socket;
    if (!this.accepting) {
      this.closer.closeSocket(socket, CloseCode.GOING_AWAY, CloseReason.GOING_AWAY);
      return undefined;
    }
    const origin = request.headers.origin;
    if (!this.origins.allows(origin)) {
      return this.refuse(socket, CloseCode.FORBIDDEN_ORIGIN, CloseReason.FORBIDDEN_ORIGIN, {
        remote_address: peerAddress(peer),
        origin,
      });
    }
    const extracted = extractToken(request, this.options.path);
    if (!extracted?.token) {
      return this.refuse(socket, CloseCode.UNAUTHORIZED, CloseReason.UNAUTHORIZED, {
        remote_address: peerAddress(peer),
        token_source: extracted?.source ?? 'none',
        cause: extracted ? 'malformed token' : 'missing token',
      });
    }
    const verified = this.verifier.verify(extracted.token);
    if (!verified.ok) {
      const reason = verified.expired ? CloseReason.TOKEN_EXPIRED : CloseReason.UNAUTHORIZED;
      return this.refuse(socket, CloseCode.UNAUTHORIZED, reason, {
        remote_address: peerAddress(peer),
        token_source: extracted.source,
        cause: verified.reason,
      });
    }
    if (this.registry.size >= this.options.maxTotalConnections || this.addressIsFull(peer)) {
      this.writer.sendToSocket(socket, 'error', {
        code: ErrorCode.CONNECTION_LIMIT_EXCEEDED,
        message: 'The server has no room for more connections; try again later',
      });
      return this.refuse(socket, CloseCode.TRY_AGAIN_LATER, CloseReason.TRY_AGAIN_LATER, {
        remote_address: peerAddress(peer),
        cause: 'capacity',
      });
    }
    const { principal } = verified;
    if (this.wouldEvict(principal.userId) && this.evictions.admit(principal.userId) > 0) {
      this.writer.sendToSocket(socket, 'error', {
        code: ErrorCode.CONNECTION_LIMIT_EXCEEDED,
        message: 'Connections of this user replaced each other too often (4008); try again later',
      });
      return this.refuse(socket, CloseCode.TRY_AGAIN_LATER, CloseReason.TRY_AGAIN_LATER, {
        remote_address: peerAddress(peer),
        user_id: principal.userId,
        cause: 'eviction rate',
      });
    }
    const connection = new RealtimeConnection(
      randomId(),
      socket,
      principal,
      peer,
      // Sub-millisecond and monotonic: two connects in one millisecond still have an order, so
      // the per-user limit evicts the one that really is older.
      monotonicNow(),
    );
    attachConnection(socket, connection);
    // Until the socket server writes connection.established, frames to it wait (SocketWriter).
    connection.awaitingEstablished = true;
    connection.resumeOpen = this.options.history !== false;
    this.registry.add(connection, this.options.maxRoomSize);
    this.expiry.add(connection);
    // Debug: a line per connection is detail at scale (Nest prints debug unless told not to).
    // Checked first: with debug off the line is not even built (it showed in connect profiles).
    if (Logger.isLevelEnabled('debug'))
      this.logger.debug({
        event: 'connection.opened',
        connection_id: connection.id,
        user_id: connection.userId,
        remote_address: peerAddress(peer),
        token_source: extracted.source,
      });
    // Nobody may be listening (presence alone on one instance waits for a status subscriber).
    if (this.events.opened.observed) {
      this.events.opened.next({
        connectionId: connection.id,
        userId: connection.userId,
        remoteAddress: connection.remoteAddress,
        connectedAt: new Date(connection.connectedAt),
      });
    }
    // Only now: had the oldest gone first, a user at a limit of 1 would have had no connection
    // for a moment, losing their rooms and flickering offline and online.
    this.evictBeyondUserLimit(connection);
    return connection;
  }

  private wouldEvict(userId: string): boolean {
    return this.registry.ofUser(userId).size >= this.options.maxConnectionsPerUser;
  }

  private addressIsFull(peer: PeerSocket): boolean {
    const limit = this.options.maxConnectionsPerIp;
    return limit > 0 && this.registry.countOfAddress(peerAddress(peer)) >= limit;
  }

  /** Closes the user's oldest connections (4008) while `newest` puts them past the limit. */
  private evictBeyondUserLimit(newest: RealtimeConnection): void {
    const { userId } = newest;
    const limit = this.options.maxConnectionsPerUser;
    while (this.registry.ofUser(userId).size > limit) {
      const oldest = this.registry.oldestOf(userId, newest);
      if (!oldest) return;
      this.writer.sendError(oldest, {
        code: ErrorCode.CONNECTION_LIMIT_EXCEEDED,
        message: `A newer connection of this user replaced this one (limit ${limit})`,
      });
      this.logger.log({
        event: 'connection.evicted',
        connection_id: oldest.id,
        user_id: userId,
      });
      this.closer.close(
        oldest,
        CloseCode.CONNECTION_LIMIT_EXCEEDED,
        CloseReason.CONNECTION_LIMIT_EXCEEDED,
      );
    }
  }

  private refuse(
    socket: WebSocket,
    code: number,
    reason: string,
    details: Record<string, unknown>,
  ): undefined {
    this.logger.warn({ event: 'connection.refused', code, reason, ...details });
    this.closer.closeSocket(socket, code, reason);
    return undefined;
  }
}
