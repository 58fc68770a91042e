import { WebSocket, type ClientOptions } from 'ws';

export interface ReceivedMessage {
  type: string;
  data: any;
  timestamp: string;
  id: string;
  in_reply_to?: string;
  source?: string;
  [key: string]: unknown;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

const DEFAULT_WAIT_MS = 3000;

/**
 * A real `ws` client that queues what it receives, so that a test can wait for the next message
 * (or the close) with a bound on the wait.
 */
export class TestClient {
  readonly received: ReceivedMessage[] = [];
  readonly closed: Promise<CloseInfo>;
  readonly opened: Promise<void>;
  /** Set when the server sent something that is not a valid JSON object envelope. */
  malformed: string[] = [];
  private cursor = 0;
  private waiters: Array<() => void> = [];
  closeInfo: CloseInfo | undefined;

  constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this.wake();
      });
    });
    this.opened = new Promise((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
      socket.once('close', () => resolve());
    });
    // A refused TCP connect rejects `opened`; tests that do not await it must not crash on it.
    this.opened.catch(() => undefined);
    socket.on('error', () => undefined);
    socket.on('message', (data, isBinary) => {
      const text = data.toString();
      try {
        const parsed = JSON.parse(text) as ReceivedMessage;
        if (
          isBinary ||
          typeof parsed !== 'object' ||
          parsed === null ||
          typeof parsed.type !== 'string'
        ) {
          this.malformed.push(text);
        }
        this.received.push(parsed);
      } catch {
        this.malformed.push(text);
      }
      this.wake();
    });
  }

  /** Opens a connection; `token` goes in the Authorization header unless `options` says otherwise. */
  static connect(
    url: string,
    token?: string,
    options: ClientOptions & { protocols?: string[] } = {},
  ): TestClient {
    const { protocols, headers, ...rest } = options;
    const socket = new WebSocket(url, protocols, {
      ...rest,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    });
    return new TestClient(socket);
  }

  /** Connects and waits for `connection.established`; fails if the server closes instead. */
  static async open(
    url: string,
    token?: string,
    options: ClientOptions & { protocols?: string[] } = {},
  ): Promise<TestClient> {
    const client = TestClient.connect(url, token, options);
    const first = await client.next();
    if (first.type !== 'connection.established') {
      throw new Error(`expected connection.established, got ${first.type}`);
    }
    return client;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The next message not yet taken (of `type`, when given, skipping others). */
  async next(type?: string, timeoutMs = DEFAULT_WAIT_MS): Promise<ReceivedMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.received.length) {
        const message = this.received[this.cursor++]!;
        if (type === undefined || message.type === type) return message;
      }
      if (this.closeInfo) {
        throw new Error(
          `closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${type ?? 'a message'}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${type ?? 'a message'}`);
      await this.waitForActivity(left);
    }
  }

  /** Sends a message and waits for the reply that carries its id in `in_reply_to`. */
  async request(
    message: { type: string; data?: unknown; id?: string },
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<ReceivedMessage> {
    const id = message.id ?? `req_${Math.random().toString(36).slice(2)}`;
    this.send({ ...message, id });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find((m) => m.in_reply_to === id);
      if (found) return found;
      if (this.closeInfo)
        throw new Error(`closed (${this.closeInfo.code}) before the reply to ${id}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply to ${message.type} within ${timeoutMs} ms`);
      await this.waitForActivity(left);
    }
  }

  /** Waits for the close, bounded. */
  async waitClose(timeoutMs = DEFAULT_WAIT_MS): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Messages received so far of a type. */
  ofType(type: string): ReceivedMessage[] {
    return this.received.filter((m) => m.type === type);
  }

  close(): void {
    if (
      this.socket.readyState === WebSocket.OPEN ||
      this.socket.readyState === WebSocket.CONNECTING
    ) {
      this.socket.terminate();
    }
  }

  private waitForActivity(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const waiters = this.waiters;
      function done() {
        clearTimeout(timer);
        resolve();
      }
      waiters.push(done);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

/** Waits until `predicate` holds, polling every 20 ms, at most `timeoutMs`. */
export async function eventually(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${what} did not hold within ${timeoutMs} ms`);
}
