import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Lowest port handed out below the ephemeral range. */
const FLOOR = 10_000;
const ATTEMPTS = 20;

/**
 * A TCP port that was free on 127.0.0.1 a moment ago, chosen below the kernel's range of
 * ephemeral ports when that range can be read: a port from inside it can be taken as the local
 * port of any outgoing connection (a benchmark opens thousands) in the moment between this
 * answer and the server that is to listen on it, which then fails with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  if (low !== undefined && low - FLOOR >= 1_000) {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const port = FLOOR + Math.floor(Math.random() * (low - FLOOR));
      if ((await listenOnce(port)) !== undefined) return port;
    }
  }
  const port = await listenOnce(0);
  if (port === undefined) throw new Error('no free port on 127.0.0.1');
  return port;
}

/** The first port of /proc/sys/net/ipv4/ip_local_port_range, where there is one. */
export function ephemeralLow(): number | undefined {
  try {
    const low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    return Number.isInteger(low) && low > 0 ? low : undefined;
  } catch {
    return undefined;
  }
}

/** Listens on `port` (0: any) and closes again; the port, or undefined when it was taken. */
export function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === 'object' && address ? address.port : undefined),
      );
    });
  });
}
