import type { Server } from 'node:http';

/**
 * The same on every target: keeps the trigger's pooled HTTP connections open while the server is
 * busy. With Node's 5 s default, a server whose event loop spends seconds on a burst of
 * broadcasts closes idle-looking connections that already carry the next request (ECONNRESET at
 * the load), which would fail the run rather than measure it.
 */
export function keepTriggerConnectionsAlive(server: Server): void {
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 35_000; // must exceed keepAliveTimeout
}
