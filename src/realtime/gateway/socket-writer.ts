import { Inject, Injectable } from '@nestjs/common';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import {
  CloseCode,
  CloseReason,
  encodeServerMessage,
  ErrorCode,
  type ErrorData,
} from '../../protocol/index.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { randomId } from '../random-id.js';
import { RealtimeMetrics } from '../realtime-metrics.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { ConnectionCloser } from './connection-closer.js';
import { isoNow } from './iso-clock.js';

const TEXT_FRAME = { binary: false } as const;

/**
 * Writes frames to sockets, bounding each one's send buffer (4010 past `maxBufferedBytes`).
 *
 * Fan-out frames written to one socket during one turn of the event loop leave in one write: the
 * first corks the socket's stream and every corked stream is uncorked once, in a `setImmediate`
 * (after the poll phase, so a burst of broadcasts handled in one phase is coalesced). Direct
 * replies are not held back, so that a ping's round trip does not wait for the end of the turn.
 */
@Injectable()
export class SocketWriter {
  /** Connections whose stream this writer corked in this turn; uncorked by {@link flush}. */
  private corked: RealtimeConnection[] = [];

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly closer: ConnectionCloser,
    private readonly metrics: RealtimeMetrics,
  ) {}

  /**
   * Writes one encoded frame; false when the connection is closing or was just closed for it.
   * With `coalesce` (fan-out), the socket stays corked until the end of the turn; a direct reply
   * leaves at once, unless frames of this turn are still held (it then follows them).
   */
  write(connection: RealtimeConnection, frame: Buffer, coalesce = false): boolean {
    const { socket } = connection;
    if (connection.closing || socket.readyState !== WebSocket.OPEN) return false;
    if (connection.awaitingEstablished) return this.hold(connection, frame);
    if (this.overflows(connection, frame)) {
      // Frames held back by the cork are not the peer's fault: hand them to the kernel, then judge.
      uncork(connection);
      if (this.overflows(connection, frame)) {
        this.closer.close(connection, CloseCode.SLOW_CONSUMER, CloseReason.SLOW_CONSUMER);
        return false;
      }
    }
    if (coalesce && !connection.corked) this.cork(connection);
    // A Buffer is sent as-is: ws would otherwise encode a string again for every recipient.
    socket.send(frame, TEXT_FRAME);
    connection.messagesOut++;
    connection.bytesOut += frame.length;
    this.metrics.messagesOut++;
    this.metrics.bytesOut += frame.length;
    return true;
  }

  /**
   * Writes `connection.established`, then what was sent to the connection before it, in order:
   * a host's `connectionOpened$` observer or gateway `handleConnection` runs before it is built.
   */
  sendEstablished(connection: RealtimeConnection, dataJson: string): boolean {
    connection.awaitingEstablished = false;
    const held = connection.held;
    connection.held = undefined;
    const sent = this.sendJson(connection, 'connection.established', dataJson);
    if (sent && held) for (const frame of held.frames) this.write(connection, frame);
    return sent;
  }

  /** Keeps a frame until `connection.established` is written; bounded as the send buffer is. */
  private hold(connection: RealtimeConnection, frame: Buffer): boolean {
    const held = (connection.held ??= { frames: [], bytes: 0 });
    held.bytes += frame.length;
    if (held.bytes > this.options.maxBufferedBytes) {
      connection.held = undefined;
      this.closer.close(connection, CloseCode.SLOW_CONSUMER, CloseReason.SLOW_CONSUMER);
      return false;
    }
    held.frames.push(frame);
    return true;
  }

  /** Uncorks every stream corked in this turn (also safe to call early, e.g. before a close). */
  readonly flush = (): void => {
    const corked = this.corked;
    this.corked = [];
    for (const connection of corked) uncork(connection);
  };

  private overflows(connection: RealtimeConnection, frame: Buffer): boolean {
    return connection.socket.bufferedAmount + frame.length > this.options.maxBufferedBytes;
  }

  private cork(connection: RealtimeConnection): void {
    const stream = streamOf(connection.socket);
    if (!stream) return;
    stream.cork();
    connection.corked = true;
    if (this.corked.push(connection) === 1) setImmediate(this.flush);
  }

  /** Sends a message to one connection only (replies, errors, connection.established). */
  send(connection: RealtimeConnection, type: string, data: unknown, inReplyTo?: string): boolean {
    return this.write(connection, encodeDirect(type, data, inReplyTo));
  }

  /** {@link send} with `data` given as its JSON text. */
  sendJson(connection: RealtimeConnection, type: string, dataJson: string): boolean {
    return this.write(connection, encodeDirectJson(type, dataJson));
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

/** The TCP stream under a ws socket (ws keeps it in `_socket` while the socket is open). */
function streamOf(socket: WebSocket): Duplex | undefined {
  return (socket as WebSocket & { _socket?: Duplex })._socket;
}

function uncork(connection: RealtimeConnection): void {
  if (!connection.corked) return;
  connection.corked = false;
  const stream = streamOf(connection.socket);
  // A stream that ended or was destroyed meanwhile already flushed or dropped what it held.
  if (stream && !stream.destroyed) stream.uncork();
}

function encodeDirect(type: string, data: unknown, inReplyTo?: string): Buffer {
  if (!isPlainData(data)) {
    const envelope = {
      type,
      data,
      timestamp: isoNow(),
      id: randomId(),
      ...(inReplyTo === undefined ? {} : { in_reply_to: inReplyTo }),
    };
    return Buffer.from(encodeServerMessage(envelope));
  }
  return encodeDirectJson(type, JSON.stringify(data), inReplyTo);
}

/**
 * The same text as encodeServerMessage (same fields, same order), without building the envelope
 * object: a timestamp and a UUID need no escaping.
 */
function encodeDirectJson(type: string, dataJson: string, inReplyTo?: string): Buffer {
  const tail = inReplyTo === undefined ? '}' : `,"in_reply_to":${JSON.stringify(inReplyTo)}}`;
  return Buffer.from(
    `{"type":${JSON.stringify(type)},"data":${dataJson},"timestamp":"${isoNow()}","id":"${randomId()}"${tail}`,
  );
}

/** An object JSON.stringify serializes the same at the top level as under the `data` key. */
function isPlainData(data: unknown): data is object {
  return (
    typeof data === 'object' &&
    data !== null &&
    typeof (data as { toJSON?: unknown }).toJSON !== 'function'
  );
}
