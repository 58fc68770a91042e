import { Injectable, Logger } from '@nestjs/common';
import type { RawData } from 'ws';
import {
  CloseCode,
  CloseReason,
  ErrorCode,
  isJsonObject,
  parseClientMessage,
  type ClientEnvelope,
} from '../../protocol/index.js';
import { isExpired } from '../auth/realtime-principal.js';
import { RealtimeEvents } from '../realtime-events.js';
import { RealtimeMetrics } from '../realtime-metrics.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { ConnectionCloser } from './connection-closer.js';
import { InboundContext } from './inbound-context.js';
import { MessageRateLimiter } from './message-rate-limiter.js';
import { toHandlerFailure } from './realtime-exception.filter.js';
import { SocketWriter } from './socket-writer.js';

/** Unhandled frames per connection before its socket is paused, and when it resumes. */
const MAX_PENDING = 16;
const RESUME_AT = 4;

/** What a handler returns to answer the client; an array sends several messages in order. */
export interface RealtimeReply {
  type: string;
  data: object;
}

/**
 * The inbound path of every frame: liveness, token expiry, rate limit, envelope parsing, routing
 * to the handler of its `type`, and the one place that replies (answer or `error`).
 */
@Injectable()
export class MessageDispatcher {
  private readonly logger = new Logger('RealtimeDispatcher');

  constructor(
    private readonly limiter: MessageRateLimiter,
    private readonly writer: SocketWriter,
    private readonly closer: ConnectionCloser,
    private readonly events: RealtimeEvents,
    private readonly metrics: RealtimeMetrics,
  ) {}

  /**
   * Takes a frame from the socket. Frames of one connection are handled strictly in order (a
   * `subscribe` then `unsubscribe` must not swap); past {@link MAX_PENDING} unhandled frames the
   * socket is paused, so a fast sender is slowed by TCP instead of growing this queue.
   */
  receive(connection: RealtimeConnection, raw: RawData, isBinary: boolean): void {
    connection.lastActivity = Date.now();
    const handle = (): Promise<void> =>
      this.dispatch(connection, raw, isBinary).catch(this.onFailure);
    connection.pending++;
    if (connection.pending >= MAX_PENDING) connection.socket.pause();
    const run = connection.pending === 1 ? handle() : connection.inbox.then(handle);
    connection.inbox = run.then(() => {
      connection.pending--;
      if (connection.pending === RESUME_AT) connection.socket.resume();
    });
  }

  private readonly onFailure = (error: unknown): void => {
    this.logger.error({ event: 'dispatch.failed', error: String(error) });
  };

  private async dispatch(
    connection: RealtimeConnection,
    raw: RawData,
    isBinary: boolean,
  ): Promise<void> {
    if (connection.closing) return;
    const now = Date.now();
    const size = byteLength(raw);
    connection.messagesIn++;
    connection.bytesIn += size;
    this.metrics.messagesIn++;
    this.metrics.bytesIn += size;
    if (isExpired(connection.principal, now)) {
      this.closer.close(connection, CloseCode.UNAUTHORIZED, CloseReason.TOKEN_EXPIRED);
      return;
    }
    const decision = this.limiter.hit(connection.userId);
    const rate = decision instanceof Promise ? await decision : decision;
    if (connection.closing) return;
    if (!rate.allowed) {
      if (rate.abusive) {
        this.closer.close(connection, CloseCode.POLICY_VIOLATION, CloseReason.POLICY_VIOLATION);
      } else {
        this.writer.sendError(
          connection,
          {
            code: ErrorCode.RATE_LIMIT_EXCEEDED,
            message: 'Too many messages; wait until reset_time',
            reset_time: rate.resetTime,
          },
          isBinary ? undefined : replyIdOf(toText(raw)),
        );
      }
      return;
    }
    if (isBinary) {
      this.invalid(connection, 'Binary frames are not part of the protocol; send JSON text');
      return;
    }
    const parsed = parseClientMessage(toText(raw));
    if (!parsed.ok) {
      this.writer.sendError(connection, { code: parsed.code, message: parsed.message }, parsed.id);
      return;
    }
    await this.route(connection, parsed.message);
  }

  private async route(connection: RealtimeConnection, message: ClientEnvelope): Promise<void> {
    const handler = connection.handlers?.get(message.type);
    if (!handler) {
      this.writer.sendError(
        connection,
        { code: ErrorCode.INVALID_MESSAGE_TYPE, message: `Unknown message type "${message.type}"` },
        message.id,
      );
      return;
    }
    const data = message.data ?? {};
    if (this.events.messages.observed) {
      this.events.messages.next({
        connectionId: connection.id,
        userId: connection.userId,
        type: message.type,
        data,
        id: message.id,
      });
    }
    const context = new InboundContext(connection, message);
    let result: unknown;
    try {
      result = await handler(data, context);
    } catch (error) {
      // Nest's pipeline hands errors to the filter; this catches what escapes it.
      context.failure ??= toHandlerFailure(error);
    }
    if (context.failure) {
      const { close, code, message: text } = context.failure;
      if (close) this.closer.close(connection, close.code, close.reason);
      else this.writer.sendError(connection, { code, message: text }, message.id);
      return;
    }
    const replies = toReplies(result);
    if (!replies) {
      // A handler bug, not the client's: tell the client something failed, and the developer what.
      this.logger.error({ event: 'handler.invalid_reply', type: message.type });
      this.writer.sendError(
        connection,
        { code: ErrorCode.INTERNAL_ERROR, message: 'The server failed to handle this message' },
        message.id,
      );
      return;
    }
    for (const reply of replies) {
      this.writer.sendReply(connection, reply.type, reply.data, message.id);
    }
  }

  private invalid(connection: RealtimeConnection, message: string): void {
    this.writer.sendError(connection, { code: ErrorCode.INVALID_MESSAGE_FORMAT, message });
  }
}

/** The replies a handler returned, or undefined when it returned something that is not one. */
function toReplies(result: unknown): RealtimeReply[] | undefined {
  if (result === undefined || result === null) return [];
  const list: unknown[] = Array.isArray(result) ? result : [result];
  return list.every(isReply) ? list : undefined;
}

function isReply(value: unknown): value is RealtimeReply {
  return isJsonObject(value) && typeof value.type === 'string' && isJsonObject(value.data);
}

/** The id of a refused message, when it had a valid one (at most 2x the limit per window). */
function replyIdOf(text: string): string | undefined {
  const parsed = parseClientMessage(text);
  return parsed.ok ? parsed.message.id : parsed.id;
}

function toText(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  return Buffer.from(raw).toString('utf8');
}

function byteLength(raw: RawData): number {
  if (Array.isArray(raw)) return raw.reduce((sum, part) => sum + part.length, 0);
  return raw.byteLength;
}
