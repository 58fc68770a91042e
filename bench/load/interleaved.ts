/**
 * W3 and W4 interleaved: short rounds that alternate between a target and a raw-ws companion
 * holding as many connections, so that both are measured in the same seconds of a shared
 * machine. Ratios between passes tens of seconds apart move with the neighbours (raw ws alone:
 * 27 to 56 µs of CPU per ping within one hour here); these ratios are taken round by round.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { jwt } from '../lib/jwt.js';
import { cpuMsPrecise } from '../lib/processes.js';
import { median, round } from '../lib/stats.js';
import { connectAll, type Identity, type LoadClient, pingEach } from './clients.js';
import { handshake } from './handshake-client.js';
import { startTarget, type Target } from './targets.js';

const PING_CLIENTS = 100;
const WARMUP_PINGS_PER_CLIENT = 100; // as W3's warm-up
// Per target, the order flipping each round. Rounds are cheap (~0.1 s of pings, ~0.4 s of
// connects and closes); with 6 connect rounds, the three passes of a run gave
// 1.00, 0.95 and 0.78× at C = 5,000.
const PING_ROUNDS = 16;
const PINGS_PER_CLIENT = 20; // 2,000 pings a round, ~0.1 s; CPU read from schedstat (ns)
const CONNECT_ROUNDS = 16;
// Not recorded, on both sides first: the companion arrives having made only its C connections,
// and rates kept rising over the first rounds (raw ws from 3,700 to 12,000-16,000/s in 10 rounds
// at C = 1,000, the module less), so its early rounds flattered the target's ratio.
const WARMUP_CONNECT_ROUNDS = 10;
const CONNECTS_PER_ROUND = 400; // new users each, closed after the round
const CLOSE_SETTLE_MS = 200; // a round's closes (and offline announcements) end before the next

export interface Interleaved {
  /** Medians over rounds of the target's number / the companion's in the neighbouring round. */
  pingCpu: number;
  pingP50: number;
  connectRate: number;
  connectCpu: number;
}

/** One target's measure in a round: [its value for the ratio, ...]. */
type Measure = (target: Target, round: number) => Promise<number[]>;

/** Per round, target / companion for each value; then the median of each over the rounds. */
async function alternate(
  target: Target,
  companion: Target,
  rounds: number,
  measure: Measure,
): Promise<number[]> {
  const ratios: number[][] = [];
  for (let i = 0; i < rounds; i++) {
    const targetFirst = i % 2 === 0;
    const first = await measure(targetFirst ? target : companion, i);
    const second = await measure(targetFirst ? companion : target, i);
    const [own, base] = targetFirst ? [first, second] : [second, first];
    ratios.push(own.map((value, k) => value / base[k]!));
  }
  return ratios[0]!.map((_, k) => round(median(ratios.map((r) => r[k]!)), 3));
}

/** CPU µs per ping and p50 ms of one round of `count` pings per client. */
async function pingRound(target: Target, pingers: LoadClient[], count: number): Promise<number[]> {
  const before = cpuMsPrecise(target.process.child);
  const latencies = await pingEach(pingers, count);
  const cpuUs = ((cpuMsPrecise(target.process.child) - before) * 1000) / latencies.length;
  return [cpuUs, median(latencies)];
}

/**
 * Connections/s and CPU µs per connection of one round of new clients, closed afterwards. They
 * connect by hand (`handshake`): with ws's client this load was the bound of raw ws's rate.
 */
async function connectRound(
  target: Target,
  identities: Identity[],
  window: number,
): Promise<number[]> {
  const before = cpuMsPrecise(target.process.child);
  const started = performance.now();
  const sockets = await connectAll(handshake, target.port, identities, window, () => {});
  const ms = performance.now() - started;
  const cpuUs = ((cpuMsPrecise(target.process.child) - before) * 1000) / identities.length;
  for (const socket of sockets) socket.close();
  await sleep(CLOSE_SETTLE_MS);
  return [(identities.length * 1000) / ms, cpuUs];
}

/**
 * A full GC in both processes before the connect rounds, so that both start them with only live
 * data on the heap. The target arrives from W1 to W3 (up to ~800,000 deliveries) and the
 * companion fresh: without it, the target's rounds also paid for marking that garbage (a harness
 * run at C = 5,000: 0.92× connections/s before a prelude of sends on the target, 0.80× after;
 * 0.97× with this GC). Not before the ping rounds: there it moved nothing beyond the noise
 * (CPU per ping 1.35-1.40× with it, 1.29-1.31× without, C = 1,000, two runs each).
 */
async function collectBoth(target: Target, companion: Target): Promise<void> {
  await Promise.all([target.memory(), companion.memory()]);
}

/**
 * Starts the raw-ws companion with one connection per identity and warms its pings up as W3
 * did the target's; then alternates ping rounds, then connect rounds (tokens minted before).
 * `pingers` are the target's W3 clients.
 */
export async function interleaved(
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
    await pingEach(companionPingers, WARMUP_PINGS_PER_CLIENT);
    const [pingCpu, pingP50] = await alternate(target, companion, PING_ROUNDS, (t) =>
      pingRound(t, t === target ? pingers : companionPingers, PINGS_PER_CLIENT),
    );
    // The same new users on both sides of a round: each target sees them for the first time.
    const newcomers = (kind: string, rounds: number) =>
      Array.from({ length: rounds }, (_, r) =>
        Array.from({ length: CONNECTS_PER_ROUND }, (_, i) => {
          const user = `bench-${kind}-${r}-${i}`;
          return { index: i, user, token: jwt({ sub: user }) };
        }),
      );
    const warmUp = newcomers('warm-up', WARMUP_CONNECT_ROUNDS);
    await alternate(target, companion, WARMUP_CONNECT_ROUNDS, (t, r) =>
      connectRound(t, warmUp[r]!, connectWindow),
    );
    const measured = newcomers('round', CONNECT_ROUNDS);
    await collectBoth(target, companion);
    const [connectRate, connectCpu] = await alternate(target, companion, CONNECT_ROUNDS, (t, r) =>
      connectRound(t, measured[r]!, connectWindow),
    );
    return {
      pingCpu: pingCpu!,
      pingP50: pingP50!,
      connectRate: connectRate!,
      connectCpu: connectCpu!,
    };
  } finally {
    for (const socket of sockets) socket.close();
    await companion.stop();
  }
}
