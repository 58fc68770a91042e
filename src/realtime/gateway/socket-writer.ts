import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import {
  CloseCode,
  CloseReason,
  encodeServerMessage,
  ErrorCode,
  type ErrorData,
} from '../../protocol/index.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { RealtimeMetrics } from '../realtime-metrics.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { ConnectionCloser } from './connection-closer.js';

const TEXT_FRAME = { binary: false } as const;

/** Writes frames to sockets, bounding each one's send buffer (4010 past `maxBufferedBytes`). */
@Injectable()
export class SocketWriter {
  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly closer: ConnectionCloser,
    private readonly metrics: RealtimeMetrics,
  ) {}

  /** Writes one encoded frame; false when the connection is closing or was just closed for it. */
  write(connection: RealtimeConnection, frame: Buffer): boolean {
    const { socket } = connection;
    if (connection.closing || socket.readyState !== WebSocket.OPEN) return false;
    if (socket.bufferedAmount + frame.length > this.options.maxBufferedBytes) {
      this.closer.close(connection, CloseCode.SLOW_CONSUMER, CloseReason.SLOW_CONSUMER);
      return false;
    }
    // A Buffer is sent as-is: ws would otherwise encode a string again for every recipient.
    socket.send(frame, TEXT_FRAME);
    connection.messagesOut++;
    connection.bytesOut += frame.length;
    this.metrics.messagesOut++;
    this.metrics.bytesOut += frame.length;
    return true;
  }

  /** Sends a message to one connection only (replies, errors, connection.established). */
  send(connection: RealtimeConnection, type: string, data: unknown, inReplyTo?: string): boolean {
    return this.write(connection, encodeDirect(type, data, inReplyTo));
  }

  /** Sends a handler's reply; one over `maxMessageSize` is replaced by a MESSAGE_TOO_LARGE error. */
  sendReply(
    connection: RealtimeConnection,
    type: string,
    data: unknown,
    inReplyTo?: string,
  ): boolean {
    const frame = encodeDirect(type, data, inReplyTo);
    if (frame.length <= this.options.maxMessageSize) return this.write(connection, frame);
    // A client may enforce the announced max_message_size (1009): say why instead.
    return this.sendError(
      connection,
      {
        code: ErrorCode.MESSAGE_TOO_LARGE,
        message: `The reply (${frame.length} bytes) exceeds max_message_size; it was not sent`,
      },
      inReplyTo,
    );
  }

  /** Sends to a socket that was never admitted (just before refusing it). */
  sendToSocket(socket: WebSocket, type: string, data: unknown): void {
    if (socket.readyState === WebSocket.OPEN) socket.send(encodeDirect(type, data), TEXT_FRAME);
  }

  sendError(connection: RealtimeConnection, error: ErrorData, inReplyTo?: string): boolean {
    connection.errorCount++;
    return this.send(connection, 'error', error, inReplyTo);
  }
}

function encodeDirect(type: string, data: unknown, inReplyTo?: string): Buffer {
  const envelope = {
    type,
    data,
    timestamp: new Date().toISOString(),
    id: randomUUID(),
    ...(inReplyTo === undefined ? {} : { in_reply_to: inReplyTo }),
  };
  return Buffer.from(encodeServerMessage(envelope));
}
