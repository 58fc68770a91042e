/**
 * The load's clients, one adapter per wire protocol: `ws` clients speaking the module's envelope
 * protocol (module, raw-ws, nest-plain), and socket.io-client for the Socket.IO target.
 */
import { randomUUID } from 'node:crypto';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';
import { STEP_TIMEOUT_MS } from '../lib/processes.js';
import { windowed } from '../lib/windowed.js';

/** A server message that is not a reply: its type, its data, and the frame's size when known. */
export type OnMessage = (client: number, type: string, data: unknown, bytes: number) => void;

export interface LoadClient {
  /** Resolves when the matching pong arrives; rejects after STEP_TIMEOUT_MS. */
  ping(): Promise<void>;
  subscribe(events: string[]): Promise<void>;
  close(): void;
}

export interface Identity {
  index: number;
  user: string;
  token: string;
}

export type Connect = (port: number, who: Identity, onMessage: OnMessage) => Promise<LoadClient>;

function bounded<T>(what: string, executor: (resolve: (value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), STEP_TIMEOUT_MS);
    executor((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** A ws client of the envelope protocol: ready at `connection.established`. */
export const connectWs: Connect = (port, who, onMessage) =>
  new Promise((resolve, reject) => {
    const query = `token=${who.token}&user=${encodeURIComponent(who.user)}`;
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?${query}`);
    const replies = new Map<string, () => void>();
    const request = (type: string, data?: object) =>
      bounded<void>(`${type} of client ${who.index}`, (done) => {
        const id = randomUUID();
        replies.set(id, done);
        socket.send(JSON.stringify({ type, id, ...(data ? { data } : {}) }));
      });
    const client: LoadClient = {
      ping: () => request('ping'),
      subscribe: (events) => request('subscribe', { events }),
      close: () => socket.terminate(),
    };
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`client ${who.index}: no connection.established`));
    }, STEP_TIMEOUT_MS);
    socket.on('message', (raw: Buffer) => {
      const message = JSON.parse(raw.toString()) as {
        type: string;
        data?: unknown;
        in_reply_to?: string;
      };
      if (message.type === 'connection.established') {
        clearTimeout(timer);
        return resolve(client);
      }
      const reply =
        message.in_reply_to === undefined ? undefined : replies.get(message.in_reply_to);
      if (reply) {
        replies.delete(message.in_reply_to!);
        return reply();
      }
      onMessage(who.index, message.type, message.data, raw.length);
    });
    socket.on('error', (error) => reject(new Error(`client ${who.index}: ${error.message}`)));
    socket.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`client ${who.index}: closed ${code} before connection.established`));
    });
  });

/** A socket.io-client, websocket transport only, the token in `auth`. */
export const connectSocketIo: Connect = (port, who, onMessage) =>
  new Promise((resolve, reject) => {
    const socket = io(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      auth: { token: who.token },
      reconnection: false,
      forceNew: true,
      timeout: STEP_TIMEOUT_MS,
    });
    const client: LoadClient = {
      ping: () =>
        bounded(`ping of client ${who.index}`, (done) => socket.emit('ping', () => done())),
      subscribe: (events) =>
        bounded(`subscribe of client ${who.index}`, (done) =>
          socket.emit('subscribe', { events }, () => done()),
        ),
      close: () => socket.disconnect(),
    };
    socket.onAny((type: string, payload?: { data?: unknown }) =>
      onMessage(who.index, type, payload?.data, 0),
    );
    socket.once('connect', () => resolve(client));
    socket.once('connect_error', (error) => {
      socket.disconnect();
      reject(new Error(`client ${who.index}: ${error.message}`));
    });
  });

/** Every client sends `count` pings one after another, all clients at once; the round trips. */
export async function pingEach(clients: LoadClient[], count: number): Promise<number[]> {
  const latencies: number[] = [];
  await Promise.all(
    clients.map(async (client) => {
      for (let i = 0; i < count; i++) {
        const sent = performance.now();
        await client.ping();
        latencies.push(performance.now() - sent);
      }
    }),
  );
  return latencies;
}

/** Opens one client per identity, `window` handshakes in flight; on any failure closes them all. */
export async function connectAll<Client extends { close(): void } = LoadClient>(
  connect: (port: number, who: Identity, onMessage: OnMessage) => Promise<Client>,
  port: number,
  identities: Identity[],
  window: number,
  onMessage: OnMessage,
): Promise<Client[]> {
  const clients: Client[] = [];
  try {
    await windowed(identities.length, window, async (i) => {
      const who = identities[i]!;
      clients[who.index] = await connect(port, who, onMessage);
    });
  } catch (error) {
    for (const client of clients) client?.close();
    throw error;
  }
  return clients;
}
