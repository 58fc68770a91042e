import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

export interface RawUpgrade {
  socket: Socket;
  /** HTTP status of the answer to the upgrade request (101 when upgraded). */
  status: number;
  /** Response headers, names lower-cased. */
  headers: Record<string, string>;
}

const HEAD_END = '\r\n\r\n';

/**
 * A WebSocket upgrade over a bare TCP socket, resolved once the response head has arrived. The
 * caller owns the socket: after a 101 it can stop reading (`pause()`) to play a peer that never
 * drains its receive buffer, which a `ws` client cannot do reliably.
 */
export async function rawUpgrade(
  port: number,
  path: string,
  token: string,
  timeoutMs = 5000,
): Promise<RawUpgrade> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  try {
    await once(socket, 'connect', { signal: AbortSignal.timeout(timeoutMs) });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
        `Authorization: Bearer ${token}${HEAD_END}`,
    );
    const head = await readHead(socket, timeoutMs);
    const [statusLine = '', ...lines] = head.split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { socket, status: Number(statusLine.split(' ')[1]), headers };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** Reads up to the end of the HTTP response head; later bytes are left to the caller. */
function readHead(socket: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => finish(new Error('no response head in time')), timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf(HEAD_END);
      if (end < 0) return;
      finish(undefined, text.slice(0, end));
      // After `finish` removed this listener, or the unshifted bytes would come straight back.
      const rest = Buffer.from(text.slice(end + HEAD_END.length), 'latin1');
      if (rest.length > 0) socket.unshift(rest);
    };
    const onClose = () => finish(new Error(`closed before a response head: ${text}`));
    function finish(error: Error | undefined, head?: string) {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (error) reject(error);
      else resolve(head!);
    }
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}
