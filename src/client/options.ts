/**
 * The part of the WebSocket API the client uses. Both the browser's `WebSocket` and the `ws`
 * package's `WebSocket` fit it, which is why the constructor is injected rather than imported.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  /** `ws` passes an `ErrorEvent` whose `error` has a `code`; browsers a plain `Event`. */
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(
    type: 'close',
    listener: (event: { code: number; reason: string }) => void,
  ): void;
}

/**
 * The third argument the client passes: `ws`'s options in Node. Browsers' `WebSocket` ignores
 * it, so the client checks the size of what it receives itself as well.
 */
export interface WebSocketOptions {
  /** Largest frame `ws` reads before it fails the connection (its default is 100 MiB). */
  maxPayload: number;
}

export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: WebSocketOptions,
) => WebSocketLike;

/** `WebSocket.OPEN`: the same number in every implementation. */
export const WEBSOCKET_OPEN = 1;

/** Where the token travels: the `bearer` subprotocol keeps it out of URLs (and access logs). */
export type TokenTransport = 'subprotocol' | 'query';

export interface RealtimeClientOptions {
  /** `ws://` or `wss://` URL of the endpoint, for example `wss://example.com/ws`. */
  url: string;
  /** Called before every connect and reconnect, so that an expired token can be replaced. */
  getToken: () => string | Promise<string>;
  /** WebSocket constructor; defaults to `globalThis.WebSocket` (in Node, pass `ws`'s). */
  WebSocket?: WebSocketConstructor;
  tokenTransport?: TokenTransport;
  /** Reconnect after a transient close (default true). */
  reconnect?: boolean;
  /** Reconnect delay bounds (full-jitter exponential backoff). */
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Reconnect attempts in a row before giving up (default: never give up). */
  maxReconnectAttempts?: number;
  /** How long a request waits for its reply. */
  requestTimeoutMs?: number;
  /** How long a connect may take until `connection.established` before it counts as failed. */
  connectTimeoutMs?: number;
  /** Sends kept while disconnected, oldest dropped first; 0 (default) rejects them instead. */
  maxQueuedMessages?: number;
  /**
   * Largest server message accepted, in UTF-8 bytes (`ws`'s `maxPayload` in Node, checked on
   * receipt in browsers). A larger one is a fault of the server: reported as an
   * `INVALID_SERVER_MESSAGE` error, and the connection is dropped (1009) and reconnected.
   * @default 16 MiB
   */
  maxMessageSize?: number;
  /** After a reconnect, ask the server to replay what was missed (`resume`). @default true */
  resume?: boolean;
  /** Source of randomness for the backoff jitter (tests pin it). */
  random?: () => number;
  /** Where errors thrown by event listeners go (default `console.error`). */
  onListenerError?: (error: unknown) => void;
}

export const defaults = {
  tokenTransport: 'subprotocol' as TokenTransport,
  reconnect: true,
  minReconnectDelayMs: 500,
  maxReconnectDelayMs: 20_000,
  maxReconnectAttempts: Number.POSITIVE_INFINITY,
  requestTimeoutMs: 10_000,
  // The server's own handshake timeout is 10 s; waiting a little longer lets it answer first.
  connectTimeoutMs: 15_000,
  maxQueuedMessages: 0,
  // The server bounds every message it sends by its own maxMessageSize (64 KiB by default):
  // 256 times that leaves room for servers that raise it, while a hostile or broken server can
  // make a Node client hold 16 MiB for one frame instead of ws's 100 MiB.
  maxMessageSize: 16 * 1024 * 1024,
  resume: true,
  /** Used until `connection.established` announces the server's values (seconds there). */
  heartbeatIntervalMs: 30_000,
  connectionTimeoutMs: 60_000,
} as const;

export type ResolvedOptions = Required<Omit<RealtimeClientOptions, 'WebSocket'>> & {
  WebSocket: WebSocketConstructor;
};

export function resolveOptions(options: RealtimeClientOptions): ResolvedOptions {
  const WebSocketImpl =
    options.WebSocket ??
    (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ??
    undefined;
  if (!WebSocketImpl) {
    throw new TypeError('No WebSocket implementation: pass the `WebSocket` option');
  }
  return {
    url: options.url,
    getToken: options.getToken,
    WebSocket: WebSocketImpl,
    tokenTransport: options.tokenTransport ?? defaults.tokenTransport,
    reconnect: options.reconnect ?? defaults.reconnect,
    minReconnectDelayMs: options.minReconnectDelayMs ?? defaults.minReconnectDelayMs,
    maxReconnectDelayMs: options.maxReconnectDelayMs ?? defaults.maxReconnectDelayMs,
    maxReconnectAttempts: options.maxReconnectAttempts ?? defaults.maxReconnectAttempts,
    requestTimeoutMs: options.requestTimeoutMs ?? defaults.requestTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
    maxQueuedMessages: options.maxQueuedMessages ?? defaults.maxQueuedMessages,
    maxMessageSize: positiveInteger(
      'maxMessageSize',
      options.maxMessageSize ?? defaults.maxMessageSize,
    ),
    resume: options.resume ?? defaults.resume,
    random: options.random ?? Math.random,
    onListenerError: options.onListenerError ?? ((error) => console.error(error)),
  };
}

/** `value`, when it is a positive integer: 0 would mean "no limit" to `ws`. */
function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** The URL to open: with the token in the query string when that transport is chosen. */
export function connectUrl(url: string, token: string, transport: TokenTransport): string {
  if (transport !== 'query') return url;
  const separator = url.includes('?') ? '&' : '?';
  return `${url}${separator}token=${encodeURIComponent(token)}`;
}
