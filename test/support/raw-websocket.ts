import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';

/** Bound on the upgrade and on every wait of a raw client. */
const WAIT_MS = 5000;

export interface FrameOptions {
  fin?: boolean;
  /** Clients must mask; false builds the illegal unmasked frame. */
  mask?: boolean;
  rsv1?: boolean;
  /** Declared payload length when it must differ from the bytes sent (a lying header). */
  declaredLength?: bigint;
}

/**
 * Builds one client-to-server frame byte by byte, so that tests can send what no WebSocket
 * library would: lying lengths, unmasked frames, reserved bits and opcodes.
 */
export function buildFrame(
  opcode: number,
  payload: Buffer = Buffer.alloc(0),
  options: FrameOptions = {},
): Buffer {
  const { fin = true, mask = true, rsv1 = false } = options;
  const length = options.declaredLength ?? BigInt(payload.length);
  const head = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f)];
  const maskBit = mask ? 0x80 : 0;
  let extended = Buffer.alloc(0);
  if (length < 126n) {
    head.push(maskBit | Number(length));
  } else if (length < 65536n) {
    head.push(maskBit | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(Number(length));
  } else {
    head.push(maskBit | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(length);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), extended, payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i % 4]!;
  return Buffer.concat([Buffer.from(head), extended, key, masked]);
}

export interface RawClose {
  /** The close code of the server's close frame, or undefined when TCP ended without one. */
  code: number | undefined;
  reason: string;
}

/**
 * A WebSocket client on a bare TCP socket: performs the upgrade, then writes raw bytes and
 * parses the server's (unmasked) frames, keeping text frames and the close frame.
 */
export class RawWebSocket {
  readonly texts: string[] = [];
  /** Response headers of the upgrade, lower-cased names. */
  readonly headers = new Map<string, string>();
  private buffer = Buffer.alloc(0);
  private upgraded = false;
  private closeFrame: RawClose | undefined;
  private ended = false;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk) => this.onData(chunk));
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  /** Upgrades `path` on 127.0.0.1:`port` with `headers`; resolves once the 101 has arrived. */
  static async open(
    port: number,
    path: string,
    headers: Record<string, string>,
  ): Promise<RawWebSocket> {
    const socket = createConnection({ host: '127.0.0.1', port });
    const client = new RawWebSocket(socket);
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    await client.until(() => client.upgraded || client.ended, 'the 101 response');
    if (!client.upgraded) throw new Error('the upgrade was refused');
    return client;
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Waits (bounded) for the server's close frame or the end of TCP, whichever comes first. */
  async closed(timeoutMs = WAIT_MS): Promise<RawClose> {
    await this.until(() => this.closeFrame !== undefined || this.ended, 'the close', timeoutMs);
    return this.closeFrame ?? { code: undefined, reason: '' };
  }

  /** Waits (bounded) until `count` text frames have arrived. */
  async textCount(count: number, timeoutMs = WAIT_MS): Promise<void> {
    await this.until(() => this.texts.length >= count, `${count} text frames`, timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (!this.upgraded) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [status, ...rest] = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
      if (!/^HTTP\/1\.1 101 /.test(status ?? '')) {
        this.socket.destroy();
        return;
      }
      for (const line of rest) {
        const colon = line.indexOf(':');
        this.headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      this.upgraded = true;
      this.buffer = this.buffer.subarray(end + 4);
    }
    this.parseFrames();
    this.wake();
  }

  /** Server frames are unmasked and, from this server, never longer than 2^32 bytes. */
  private parseFrames(): void {
    for (;;) {
      if (this.buffer.length < 2) return;
      const opcode = this.buffer[0]! & 0x0f;
      let length = this.buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffer.length < 4) return;
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffer.length < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + length) return;
      const payload = this.buffer.subarray(offset, offset + length);
      this.buffer = this.buffer.subarray(offset + length);
      if (opcode === 0x1) this.texts.push(payload.toString('utf8'));
      if (opcode === 0x8) {
        this.closeFrame = {
          code: payload.length >= 2 ? payload.readUInt16BE(0) : undefined,
          reason: payload.subarray(2).toString('utf8'),
        };
      }
    }
  }

  private async until(done: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`raw client: no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, left);
        const waiters = this.waiters;
        function finish() {
          clearTimeout(timer);
          waiters.delete(finish);
          resolve();
        }
        waiters.add(finish);
      });
    }
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
