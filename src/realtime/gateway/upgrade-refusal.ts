import type { Duplex } from 'node:stream';

/**
 * Answers an upgrade request with an HTTP error and drops the socket once the answer is written.
 * Ending alone is not enough: the HTTP server's sockets allow half-open connections, so a peer
 * that never ends its side would hold the socket, and `server.close()` with it, for ever.
 */
export function refuseUpgrade(socket: Duplex, status: string, headers: string[] = []): void {
  socket.once('finish', () => socket.destroy());
  socket.end(
    [`HTTP/1.1 ${status}`, ...headers, 'Connection: close', 'Content-Length: 0', '', ''].join(
      '\r\n',
    ),
  );
}
