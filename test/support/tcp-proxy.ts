import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.js';

/**
 * A TCP relay on 127.0.0.1 to a local port: a real network path between one app and Redis that
 * a test can stall, cut and restore, while the other apps keep their direct connections.
 */
export interface TcpProxy {
  readonly port: number;
  /** When each relayed connection was accepted (performance.now()), in order. */
  readonly acceptedAt: readonly number[];
  /** Relayed connections open now. */
  openConnections(): number;
  /**
   * Stalls the path to the server, as a network that stops delivering would: what clients send
   * is kept here, not forwarded (their commands stay in flight); replies still flow back.
   */
  hold(): void;
  /**
   * Ends every relayed connection the way a server going away does (FIN to the client; whatever
   * was held is lost) and refuses new ones. Resolves once the connections are closed (bounded).
   */
  cut(): Promise<void>;
  /** Forwards again and accepts connections again, on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** What the client sent while the path was held. */
  held: Buffer[];
}

/** Bound on the clients closing their side after a cut. */
const CUT_WAIT_MS = 3000;

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  const port = await freePort();
  let server: Server | undefined;
  let holding = false;
  const acceptedAt: number[] = [];

  const relay = (client: Socket) => {
    acceptedAt.push(performance.now());
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    const pair: Pair = { client, upstream, held: [] };
    pairs.add(pair);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    // The proxy keeps reading what the client sends (so that closing never resets the
    // connection); while holding, it is kept instead of forwarded.
    client.on('data', (chunk: Buffer) => {
      if (holding) pair.held.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    client.once('close', () => {
      pairs.delete(pair);
      upstream.destroy();
    });
    upstream.once('close', () => client.end());
  };

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const next = createServer(relay);
      next.once('error', reject);
      next.listen(port, '127.0.0.1', () => {
        server = next;
        resolve();
      });
    });

  const cut = async (): Promise<void> => {
    const current = server;
    server = undefined;
    const closed = current && new Promise<void>((resolve) => current.close(() => resolve()));
    for (const { client, upstream } of pairs) {
      upstream.destroy();
      client.end();
    }
    const deadline = Date.now() + CUT_WAIT_MS;
    while (pairs.size > 0 && Date.now() < deadline) await sleep(10);
    for (const { client } of pairs) client.destroy();
    await closed;
  };

  await listen();
  return {
    port,
    acceptedAt,
    openConnections: () => pairs.size,
    hold: () => {
      holding = true;
    },
    cut,
    restore: async () => {
      holding = false;
      for (const pair of pairs) for (const chunk of pair.held.splice(0)) pair.upstream.write(chunk);
      if (!server) await listen();
    },
    close: cut,
  };
}
