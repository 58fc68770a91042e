import { CloseCode, CloseReason } from '../protocol/index.js';
import { connectUrl, type ResolvedOptions, WEBSOCKET_OPEN, type WebSocketLike } from './options.js';
import { retryAfterMs } from './retry-after.js';
import { frameExceeds } from './wire.js';

export interface SocketHandlers {
  onMessage: (raw: unknown) => void;
  onClose: (code: number, reason: string) => void;
  /** No `connection.established` within `connectTimeoutMs`. */
  onConnectTimeout: () => void;
  /** The server sent a message over `maxMessageSize` (the socket is not closed yet). */
  onTooLarge: () => void;
  /** The upgrade was refused with a `Retry-After` (Node only: browsers do not see it). */
  onRetryAfter: (delayMs: number) => void;
}

type SocketOptions = Pick<
  ResolvedOptions,
  'url' | 'tokenTransport' | 'WebSocket' | 'connectTimeoutMs' | 'maxMessageSize'
>;

/** The HTTP response to a refused upgrade, as `ws`'s `unexpected-response` passes it. */
interface RefusalResponse {
  statusCode?: number;
  headers?: Record<string, string | string[] | undefined>;
}

/** `ws`'s error when a frame passes `maxPayload` (it then closes the connection itself). */
function isPayloadTooLarge(event: unknown): boolean {
  const error = (event as { error?: { code?: unknown } } | undefined)?.error;
  return error?.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
}

/**
 * The socket of the current connection, if any. Events of a socket that was replaced or released
 * are ignored: such a socket may still report them, and they must not affect the client.
 */
export class CurrentSocket {
  private socket: WebSocketLike | undefined;
  /** The token the last socket was opened with; kept after release, to compare after a 4001. */
  private openedWith: string | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: SocketOptions) {}

  get current(): WebSocketLike | undefined {
    return this.socket;
  }

  get token(): string | undefined {
    return this.openedWith;
  }

  /** Opens a socket with `token`; throws when the implementation refuses (malformed URL). */
  open(token: string, handlers: SocketHandlers): void {
    const { url, tokenTransport, WebSocket: WebSocketImpl, maxMessageSize } = this.options;
    const socketOptions = { maxPayload: maxMessageSize };
    const socket =
      tokenTransport === 'subprotocol'
        ? new WebSocketImpl(url, ['bearer', token], socketOptions)
        : new WebSocketImpl(connectUrl(url, token, tokenTransport), undefined, socketOptions);
    this.socket = socket;
    this.openedWith = token;
    socket.addEventListener('message', (event) => {
      if (socket !== this.socket) return;
      // In Node `ws` has refused it already; a browser has no such bound.
      if (frameExceeds(event.data, maxMessageSize)) handlers.onTooLarge();
      else handlers.onMessage(event.data);
    });
    socket.addEventListener('close', (event) => {
      if (socket === this.socket) handlers.onClose(event.code, event.reason);
    });
    // `close` follows every `error`, so only `ws`'s refused frame needs telling apart; the
    // listener also keeps `ws` from throwing.
    socket.addEventListener('error', (event) => {
      if (socket === this.socket && isPayloadTooLarge(event)) handlers.onTooLarge();
    });
    this.watchRefusal(socket, handlers);
    this.connectTimer = setTimeout(() => {
      if (socket === this.socket) handlers.onConnectTimeout();
    }, this.options.connectTimeoutMs);
  }

  /**
   * `ws` reports a refused upgrade's response (a 429 with `Retry-After`) as `unexpected-response`,
   * and only when nobody listens does it abort the handshake: the listener aborts it the same
   * way (an `error`, then a 1006 `close`), after passing on the delay asked for.
   */
  private watchRefusal(socket: WebSocketLike, handlers: SocketHandlers): void {
    const on = (socket as { on?: unknown }).on;
    if (typeof on !== 'function') return;
    const onRefusal = (_request: unknown, response: RefusalResponse | undefined) => {
      const delayMs = retryAfterMs(response?.statusCode, response?.headers?.['retry-after']);
      if (socket === this.socket && delayMs !== undefined) handlers.onRetryAfter(delayMs);
      closeQuietly(socket, CloseCode.TRY_AGAIN_LATER, CloseReason.TRY_AGAIN_LATER);
    };
    (on as (event: string, listener: typeof onRefusal) => unknown).call(
      socket,
      'unexpected-response',
      onRefusal,
    );
  }

  /** The handshake finished (or the connection ended): the connect timeout no longer applies. */
  stopConnectTimer(): void {
    if (this.connectTimer === undefined) return;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
  }

  write(frame: string): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WEBSOCKET_OPEN) return false;
    socket.send(frame);
    return true;
  }

  /** Forgets the socket (its later events are ignored) and returns it, to close it if need be. */
  release(): WebSocketLike | undefined {
    const socket = this.socket;
    this.socket = undefined;
    this.stopConnectTimer();
    return socket;
  }
}

/** How long `close()` waits for the server to answer the close before it terminates. */
export const CLOSE_GRACE_MS = 1_000;

/** `WebSocket.CLOSED`: the same number in every implementation. */
const WEBSOCKET_CLOSED = 3;

/**
 * Closes without waiting: `terminate()` where the implementation has it (`ws`, whose `close()`
 * would wait up to 30 s for a dead server's answer), `close()` otherwise. A normal close gets
 * the close handshake, but with `ws` only for {@link CLOSE_GRACE_MS}: then it terminates, so that
 * a server that never answers cannot keep a Node process alive for `ws`'s 30 s. Never throws.
 */
export function closeQuietly(socket: WebSocketLike, code: number, reason: string): void {
  try {
    const terminate = (socket as { terminate?: () => void }).terminate;
    if (typeof terminate !== 'function') {
      socket.close(code, reason);
    } else if (code !== CloseCode.NORMAL) {
      terminate.call(socket);
    } else {
      socket.close(code, reason);
      const timer = setTimeout(() => {
        try {
          if (socket.readyState !== WEBSOCKET_CLOSED) terminate.call(socket);
        } catch {
          // Closed meanwhile: nothing left to release.
        }
      }, CLOSE_GRACE_MS);
      // The grace itself must not keep the process alive.
      (timer as { unref?: () => void }).unref?.();
      socket.addEventListener('close', () => clearTimeout(timer));
    }
  } catch {
    // Already closing or closed: nothing left to release.
  }
}
