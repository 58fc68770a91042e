/**
 * W3 interleaved: short ping rounds that alternate between a target and a raw-ws companion
 * holding as many connections, so that both are measured in the same seconds of a shared
 * machine. Ratios between passes tens of seconds apart move with the neighbours (raw ws alone:
 * 27 to 56 µs of CPU per ping within one hour here); these ratios are taken round by round.
 */
import { cpuMsPrecise } from '../lib/processes.js';
import { median, round } from '../lib/stats.js';
import { connectAll, type Identity, type LoadClient, pingEach } from './clients.js';
import { startTarget, type Target } from './targets.js';

const PING_CLIENTS = 100;
const WARMUP_PINGS_PER_CLIENT = 100; // as W3's warm-up
const ROUNDS = 8; // per target; the order flips each round
const PINGS_PER_CLIENT = 20; // 2,000 pings a round, ~0.1 s; CPU read from schedstat (ns)

export interface Interleaved {
  /** Median over rounds of the target's server CPU per ping / the companion's. */
  cpuRatio: number;
  /** Median over rounds of the target's p50 round trip / the companion's. */
  p50Ratio: number;
}

interface Round {
  cpuUs: number;
  p50Ms: number;
}

async function pingRound(target: Target, pingers: LoadClient[], count: number): Promise<Round> {
  const before = cpuMsPrecise(target.process.child);
  const latencies = await pingEach(pingers, count);
  const cpuUs = ((cpuMsPrecise(target.process.child) - before) * 1000) / latencies.length;
  return { cpuUs, p50Ms: median(latencies) };
}

/**
 * Starts the raw-ws companion with one connection per identity, warms both ping paths up, then
 * alternates rounds. `pingers` are the target's clients (already warmed up by W3).
 */
export async function interleavedPings(
  target: Target,
  pingers: LoadClient[],
  identities: Identity[],
  connectWindow: number,
): Promise<Interleaved> {
  const companion = await startTarget('raw-ws', identities.length);
  let sockets: LoadClient[] = [];
  try {
    sockets = await connectAll(
      companion.connect,
      companion.port,
      identities,
      connectWindow,
      () => {},
    );
    const companionPingers = sockets.slice(0, PING_CLIENTS);
    await pingRound(companion, companionPingers, WARMUP_PINGS_PER_CLIENT);
    const cpu: number[] = [];
    const p50: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const first = i % 2 === 0;
      const a = first ? await pingRound(target, pingers, PINGS_PER_CLIENT) : undefined;
      const base = await pingRound(companion, companionPingers, PINGS_PER_CLIENT);
      const own = a ?? (await pingRound(target, pingers, PINGS_PER_CLIENT));
      cpu.push(own.cpuUs / base.cpuUs);
      p50.push(own.p50Ms / base.p50Ms);
    }
    return { cpuRatio: round(median(cpu), 3), p50Ratio: round(median(p50), 3) };
  } finally {
    for (const socket of sockets) socket.close();
    await companion.stop();
  }
}
