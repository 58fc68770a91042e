import { Injectable, Logger } from '@nestjs/common';
import { isObservable } from 'rxjs';
import type { RawData } from 'ws';
import {
  CloseCode,
  CloseReason,
  ErrorCode,
  isJsonObject,
  jsonObjectProblem,
  parseClientMessage,
  type ClientEnvelope,
  type ErrorData,
} from '../../protocol/index.js';
import { isExpired } from '../auth/realtime-principal.js';
import { RealtimeEvents } from '../realtime-events.js';
import { RealtimeMetrics } from '../realtime-metrics.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { ConnectionCloser } from './connection-closer.js';
import { InboundContext } from './inbound-context.js';
import { MessageRateLimiter, type RateDecision } from './message-rate-limiter.js';
import { byteLength, replyIdOf, toText } from './raw-frame.js';
import { toHandlerFailure } from './realtime-exception.filter.js';
import { SocketWriter } from './socket-writer.js';
import { settleHandlerResult } from './handler-result.js';
import { isThenable } from './thenable.js';
import { monotonicNow } from '../monotonic-clock.js';

/** The answer to a message the server failed to handle; its text never holds the cause. */
const INTERNAL_ERROR: ErrorData = {
  code: ErrorCode.INTERNAL_ERROR,
  message: 'The server failed to handle this message',
};

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
   * socket is paused, so a fast sender is slowed by TCP instead of growing this queue. A frame
   * that arrives with nothing pending and is handled synchronously (a ping) makes no promise.
   */
  receive(connection: RealtimeConnection, raw: RawData, isBinary: boolean): void {
    connection.lastActivity = monotonicNow();
    connection.pending++;
    if (connection.pending >= MAX_PENDING) connection.socket.pause();
    if (connection.pending === 1) {
      const run = this.handle(connection, raw, isBinary);
      if (run === undefined) this.settle(connection);
      else connection.inbox = run.then(() => this.settle(connection));
      return;
    }
    connection.inbox = connection.inbox
      .then(() => this.handle(connection, raw, isBinary))
      .then(() => this.settle(connection));
  }

  /** One frame of the connection fully handled. */
  private settle(connection: RealtimeConnection): void {
    connection.pending--;
    if (connection.pending === RESUME_AT) connection.socket.resume();
  }

  /** {@link dispatch} that never throws nor rejects: a fault of the server still answers. */
  private handle(
    connection: RealtimeConnection,
    raw: RawData,
    isBinary: boolean,
  ): Promise<void> | undefined {
    try {
      // The closure is made only for an asynchronous frame (a subscribe, an async storage).
      return this.dispatch(connection, raw, isBinary)?.then(undefined, (error: unknown) =>
        this.fault(connection, raw, isBinary, error),
      );
    } catch (error) {
      this.fault(connection, raw, isBinary, error);
      return undefined;
    }
  }

  /**
   * A failure of the server's own while handling a frame (a rate-limit storage that rejects, a
   * bug): the message is answered INTERNAL_ERROR rather than left without a reply (PROTOCOL.md
   * section 6); when not even that can be written, the connection ends 1011 (section 2).
   */
  private fault(
    connection: RealtimeConnection,
    raw: RawData,
    isBinary: boolean,
    error: unknown,
  ): void {
    this.logger.error({ event: 'dispatch.failed', error: String(error) });
    try {
      const id = isBinary ? undefined : replyIdOf(toText(raw));
      this.writer.sendError(connection, INTERNAL_ERROR, id);
    } catch {
      try {
        this.closer.close(connection, CloseCode.INTERNAL_ERROR, CloseReason.INTERNAL_ERROR);
      } catch (closeError) {
        // Nothing is left to do for this socket; a throw here would be an unhandled rejection.
        this.logger.error({ event: 'dispatch.close_failed', error: String(closeError) });
      }
    }
  }

  /** Handles one frame; a promise only when a step (rate limit storage, handler) is async. */
  private dispatch(
    connection: RealtimeConnection,
    raw: RawData,
    isBinary: boolean,
  ): Promise<void> | undefined {
    if (connection.closing) return undefined;
    const now = Date.now();
    const size = byteLength(raw);
    connection.messagesIn++;
    connection.bytesIn += size;
    this.metrics.messagesIn++;
    this.metrics.bytesIn += size;
    if (isExpired(connection.principal, now)) {
      this.closer.close(connection, CloseCode.UNAUTHORIZED, CloseReason.TOKEN_EXPIRED);
      return undefined;
    }
    const decision = this.limiter.hit(connection.userId);
    if (decision instanceof Promise) {
      return decision.then((rate) => this.admit(connection, raw, isBinary, rate));
    }
    return this.admit(connection, raw, isBinary, decision);
  }

  private admit(
    connection: RealtimeConnection,
    raw: RawData,
    isBinary: boolean,
    rate: RateDecision,
  ): Promise<void> | undefined {
    if (connection.closing) return undefined;
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
      return undefined;
    }
    if (isBinary) {
      this.invalid(connection, 'Binary frames are not part of the protocol; send JSON text');
      return undefined;
    }
    const parsed = parseClientMessage(toText(raw));
    if (!parsed.ok) {
      this.writer.sendError(connection, { code: parsed.code, message: parsed.message }, parsed.id);
      return undefined;
    }
    return this.route(connection, parsed.message);
  }

  private route(
    connection: RealtimeConnection,
    message: ClientEnvelope,
  ): Promise<void> | undefined {
    const handler = connection.handlers?.get(message.type);
    if (!handler) {
      this.writer.sendError(
        connection,
        { code: ErrorCode.INVALID_MESSAGE_TYPE, message: `Unknown message type "${message.type}"` },
        message.id,
      );
      return undefined;
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
      result = handler(data, context);
    } catch (error) {
      context.failure ??= toHandlerFailure(error);
    }
    if (isThenable(result) || isObservable(result)) {
      return settleHandlerResult(result).then(
        (value) => this.answer(connection, context, value),
        (error: unknown) => {
          // Nest's pipeline hands errors to the filter; this catches what escapes it.
          context.failure ??= toHandlerFailure(error);
          this.answer(connection, context, undefined);
        },
      );
    }
    this.answer(connection, context, result);
    return undefined;
  }

  /** The one place that answers a handled message: its failure, or the handler's replies. */
  private answer(connection: RealtimeConnection, context: InboundContext, result: unknown): void {
    const { message } = context;
    if (context.failure) {
      const { close, code, message: text } = context.failure;
      if (close) this.closer.close(connection, close.code, close.reason);
      else this.writer.sendError(connection, { code, message: text }, message.id);
      return;
    }
    const replies = toReplies(result);
    if (!replies) return this.invalidReply(connection, message);
    for (const reply of replies) {
      try {
        this.writer.sendReply(connection, reply.type, reply.data, message.id);
      } catch {
        // JSON.stringify threw (a BigInt, a cycle) before anything of this reply was written.
        return this.invalidReply(connection, message);
      }
    }
  }

  /** A handler bug, not the client's: tell the client something failed, and the developer what. */
  private invalidReply(connection: RealtimeConnection, message: ClientEnvelope): void {
    this.logger.error({ event: 'handler.invalid_reply', type: message.type });
    this.writer.sendError(connection, INTERNAL_ERROR, message.id);
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
  return (
    isJsonObject(value) &&
    typeof value.type === 'string' &&
    jsonObjectProblem(value.data) === undefined
  );
}
