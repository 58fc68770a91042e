import { WebSocket } from 'ws';
import type { RealtimeClientOptions, WebSocketConstructor } from '../../src/client/index.js';

// `ws`'s WebSocket must fit the client's injected constructor type without a cast.
export const NodeWebSocket: WebSocketConstructor = WebSocket;

/**
 * SDK options for `user` on `server`, in Node. The reconnect delays are short, so that a client
 * that wrongly reconnects does so well inside a test's quiet window.
 */
export function sdkOptions(
  server: { wsUrl: string; token(user: string): string },
  user: string,
  overrides: Partial<RealtimeClientOptions> = {},
): RealtimeClientOptions {
  return {
    url: server.wsUrl,
    WebSocket: NodeWebSocket,
    getToken: () => server.token(user),
    minReconnectDelayMs: 20,
    maxReconnectDelayMs: 50,
    ...overrides,
  };
}
