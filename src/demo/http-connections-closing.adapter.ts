import { ExpressAdapter } from '@nestjs/platform-express';

/**
 * Express, closing every HTTP connection when the app closes: a client that never finishes its
 * request cannot hold up `app.close()`. This is what Nest's `forceCloseConnections` is for, but
 * that option tracks every TCP socket (a Set entry and a 'close' listener each), WebSockets
 * included: 1-5% of the server CPU per WebSocket connection in W4 A/B runs (bench/README.md). Node
 * already lists the server's HTTP connections, and `closeAllConnections()` ends those and leaves
 * upgraded sockets alone; the module's WebSockets are closed by then (1001, GracefulShutdown).
 */
export class HttpConnectionsClosingAdapter extends ExpressAdapter {
  override close(): ReturnType<ExpressAdapter['close']> {
    // Stops listening (synchronously, in the promise's executor), then ends what is still open:
    // in the same turn, so that no connection arrives in between.
    const closing = super.close();
    this.getHttpServer()?.closeAllConnections();
    return closing;
  }
}
