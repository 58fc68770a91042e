/**
 * The least a client of the envelope protocol can do to connect: an upgrade request written by
 * hand, ready at the first frame if it is `connection.established`. For connect rounds whose
 * sockets are closed right after, so that they measure the server rather than the load: ws's
 * client cost this load 210–340 µs of CPU per connection (2026-12-02), more than raw ws's server
 * spends on it (100–150 µs), so with it raw ws's connection rate was the load's.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { STEP_TIMEOUT_MS } from '../lib/processes.js';
import type { Identity } from './clients.js';

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_FIRST_MESSAGE = 65_535; // connection.established is ~500 bytes; more is not a server of ours

export interface HandshakeClient {
  close(): void;
}

/**
 * Resolves once the 101 and `connection.established` have arrived; rejects on anything else
 * (another status, another first message, a close, an error, nothing within STEP_TIMEOUT_MS).
 */
export function handshake(port: number, who: Identity): Promise<HandshakeClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const query = `token=${who.token}&user=${encodeURIComponent(who.user)}`;
    socket.write(
      `GET /ws?${query} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\n` +
        `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    );
    let received: Buffer | undefined;
    const fail = (why: string) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`client ${who.index}: ${why}`));
    };
    const timer = setTimeout(() => fail('no connection.established in time'), STEP_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      received = received ? Buffer.concat([received, chunk]) : chunk;
      const message = firstMessage(received);
      if (message === undefined) return;
      if (typeof message !== 'string') return fail(message.error);
      if (typeOf(message) !== 'connection.established')
        return fail(`first message was not connection.established: ${message.slice(0, 80)}`);
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.on('data', () => undefined); // later messages (presence, say) are not this test's
      resolve({ close: () => socket.destroy() });
    };
    const onClose = () => fail('closed before connection.established');
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', (error) => fail(error.message));
  });
}

/**
 * The first message's text once the response head and the whole first frame are in; `undefined`
 * while more bytes are needed; `{ error }` when the server answered anything but 101 and a
 * single-frame text message.
 */
function firstMessage(bytes: Buffer): string | { error: string } | undefined {
  const headEnd = bytes.indexOf(HEAD_END);
  if (headEnd < 0) return undefined;
  const statusLine = bytes.toString('latin1', 0, bytes.indexOf('\r\n'));
  if (!statusLine.startsWith('HTTP/1.1 101 ')) return { error: `answered ${statusLine}` };
  const frame = headEnd + HEAD_END.length;
  if (bytes.length < frame + 2) return undefined;
  const opcode = bytes[frame]! & 0x0f;
  const fin = (bytes[frame]! & 0x80) !== 0;
  if (opcode !== 0x1 || !fin) return { error: `first frame has opcode ${opcode}, fin ${fin}` };
  let length = bytes[frame + 1]! & 0x7f;
  let payload = frame + 2;
  if (length === 126) {
    if (bytes.length < frame + 4) return undefined;
    length = bytes.readUInt16BE(frame + 2);
    payload = frame + 4;
  } else if (length === 127) {
    return { error: `first message over ${MAX_FIRST_MESSAGE} bytes` };
  }
  if (bytes.length < payload + length) return undefined;
  return bytes.toString('utf8', payload, payload + length);
}

function typeOf(text: string): unknown {
  try {
    return (JSON.parse(text) as { type?: unknown } | null)?.type;
  } catch {
    return undefined;
  }
}
