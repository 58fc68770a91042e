import { WebSocket } from 'ws';

/**
 * A light `ws` client for crowds: it keeps no messages, only whether the numbered ones of one
 * type (`data.seq` = 0, 1, 2, ...) arrived complete and in order, so that a thousand of them
 * cost the test process little memory and the server is what gets measured.
 */
export class SequenceReader {
  /** The seq expected next; equals the count of in-order messages seen. */
  expected = 0;
  /** Descriptions of messages that broke the order. */
  readonly disorder: string[] = [];
  /** Messages of other types, apart from connection.established. */
  readonly others: string[] = [];
  closeCode: number | undefined;

  private constructor(readonly socket: WebSocket) {}

  /** Connects and resolves at `connection.established`; rejects on a close or after `timeoutMs`. */
  static open(
    url: string,
    token: string,
    type: string,
    timeoutMs = 10_000,
  ): Promise<SequenceReader> {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const reader = new SequenceReader(socket);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('not established in time')), timeoutMs);
      function fail(error: Error) {
        clearTimeout(timer);
        socket.terminate();
        reject(error);
      }
      socket.on('error', () => undefined);
      socket.on('close', (code) => {
        reader.closeCode = code;
        fail(new Error(`closed ${code} before connection.established`));
      });
      socket.on('message', (raw) => {
        const message = JSON.parse(raw.toString()) as { type: string; data: { seq?: unknown } };
        if (message.type === 'connection.established') {
          clearTimeout(timer);
          resolve(reader);
        } else if (message.type !== type) {
          reader.others.push(message.type);
        } else if (message.data.seq === reader.expected) {
          reader.expected++;
        } else {
          reader.disorder.push(`got ${String(message.data.seq)}, expected ${reader.expected}`);
        }
      });
    });
  }

  close(): void {
    this.socket.terminate();
  }
}
