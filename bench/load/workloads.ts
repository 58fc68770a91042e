/**
 * One pass over one target with C clients: W4 connection setup, W2 idle memory, W1 fan-out to
 * all / to an event's subscribers / to each user, W3 ping latency; all on fresh server process.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { jwt } from '../lib/jwt.js';
import { cpuMs, machineBusyMs, running, STEP_TIMEOUT_MS, until } from '../lib/processes.js';
import { percentile, round } from '../lib/stats.js';
import { windowed } from '../lib/windowed.js';
import { connectAll, type LoadClient, pingEach } from './clients.js';
import { interleaved } from './interleaved.js';
import { METRIC_KEYS, type Metrics } from './metrics.js';
import { Receipts } from './receipts.js';
import type { Target } from './targets.js';
import { Trigger, TRIGGER_WINDOW } from './trigger-client.js';

const CONNECT_WINDOW = 200;
const BROADCASTS = 100;
const WARMUPS = TRIGGER_WINDOW; // opens every keep-alive connection of the trigger before timing
const EVENT = 'system.notification'; // in the module's default subscribable list
const PING_CLIENTS = 100;
const PINGS_PER_CLIENT = 200;
// Untimed pings first: V8 compiles a target's message path during its first thousands of pings
// (a larger path compiles longer), which is a cost paid once per process, not per ping.
const WARMUP_PINGS_PER_CLIENT = 100;
const FRAME_BYTES = 200; // target size of a delivered frame, with the module's envelope

/** The data padded so that the module's frame (its envelope is the largest) is ~FRAME_BYTES. */
function padding(): string {
  const envelope = JSON.stringify({
    type: EVENT,
    data: { seq: 10, pad: '' },
    timestamp: new Date().toISOString(),
    id: crypto.randomUUID(),
    source: 'admin_broadcast',
  });
  return 'x'.repeat(Math.max(0, FRAME_BYTES - envelope.length));
}

export interface Delivery {
  expected: number;
  delivered: number;
  duplicates: number;
  stray: number;
  frame_bytes: number;
  elapsed_ms: number;
  /** Loss, duplicates or strays: the run's numbers for this workload are not used. */
  failed: boolean;
}

export interface Pass {
  target: string;
  clients: number;
  run: number;
  metrics: Metrics;
  deliveries: Record<'all' | 'event' | 'user', Delivery>;
  /** CPU of other processes during the measured windows, % of one core (max over windows). */
  other_cpu_percent: number;
  /** CPU of this process (the load) during the measured windows, % of one core (max). */
  load_cpu_percent: number;
  /** Why the pass stopped early, if it did; its missing metrics are NaN. */
  error?: string;
}

/** Server CPU and the rest of the machine's over one measured window. */
class Window {
  private readonly server = cpuMs(this.target.process.child);
  private readonly load = process.cpuUsage();
  private readonly machine = machineBusyMs();
  readonly start = performance.now();

  constructor(private readonly target: Target) {}

  /** This process's CPU ms so far: the load's side of the window. */
  loadMs(): number {
    const load = process.cpuUsage(this.load);
    return (load.user + load.system) / 1000;
  }

  /** Server CPU ms so far; records other processes' CPU share into `pass`. */
  close(pass: Pass, end = performance.now()): number {
    const server = cpuMs(this.target.process.child) - this.server;
    const loadMs = this.loadMs();
    const other = machineBusyMs() - this.machine - server - loadMs;
    const percent = (ms: number) =>
      round((Math.max(0, ms) / Math.max(1, end - this.start)) * 100, 0);
    pass.other_cpu_percent = Math.max(pass.other_cpu_percent, percent(other));
    pass.load_cpu_percent = Math.max(pass.load_cpu_percent, percent(loadMs));
    return server;
  }
}

/** A pass with nothing measured yet: every metric NaN. */
export function emptyPass(target: string, clients: number, run: number): Pass {
  return {
    target,
    clients,
    run,
    metrics: Object.fromEntries(METRIC_KEYS.map((k) => [k, NaN])) as Metrics,
    deliveries: {} as Pass['deliveries'],
    other_cpu_percent: 0,
    load_cpu_percent: 0,
  };
}

export async function runPass(target: Target, clients: number, run: number): Promise<Pass> {
  const pass = emptyPass(target.name, clients, run);
  const m = pass.metrics;
  const trigger = new Trigger(target.port, `Bearer ${jwt({ sub: 'bench-admin', role: 'admin' })}`);
  let receipts = new Receipts('none', clients, 1);
  const onMessage = (client: number, type: string, data: unknown, bytes: number) =>
    receipts.record(client, type, data, bytes);
  let sockets: LoadClient[] = [];
  try {
    const identities = Array.from({ length: clients }, (_, index) => {
      const user = `bench-user-${index}`;
      return { index, user, token: jwt({ sub: user }) };
    });
    const idle = await target.memory();

    // W4: connection setup, each with its own token.
    let window = new Window(target);
    sockets = await connectAll(target.connect, target.port, identities, CONNECT_WINDOW, onMessage);
    const connectMs = performance.now() - window.start;
    m.connect_per_s = round((clients * 1000) / connectMs, 0);
    // ws's client is heavy: when this is about the window's length, the load set the rate.
    m.connect_load_cpu_us = round((window.loadMs() * 1000) / clients, 1);
    m.connect_cpu_us = round((window.close(pass) * 1000) / clients, 1);

    // W2: idle memory per connection, after GC.
    await sleep(500);
    const connected = await target.memory();
    m.rss_per_connection = round((connected.rss - idle.rss) / clients, 0);
    m.heap_per_connection = round((connected.heapUsed - idle.heapUsed) / clients, 0);

    const pad = padding();
    receipts = new Receipts('bench.warmup', clients, WARMUPS);
    await trigger.burst(WARMUPS, (seq) => ({ type: 'bench.warmup', data: { seq } }));
    await until(
      () => `warm-up delivered (${receipts.unique} of ${receipts.expectedTotal})`,
      () => receipts.unique >= receipts.expectedTotal,
      STEP_TIMEOUT_MS,
      5,
    );

    // W1: fan-out to all, to an event's subscribers (the even clients), to each user.
    const measure = async (next: Receipts, count: number, body: (i: number) => object) => {
      receipts = next;
      const expected = next.expectedTotal;
      const window = new Window(target);
      await trigger.burst(count, body);
      await until(
        () => '',
        () => next.unique >= expected,
        STEP_TIMEOUT_MS,
        5,
      ).catch(() => undefined); // loss is a result, reported as a failed workload
      const end = next.unique > 0 ? next.last : performance.now();
      const server = window.close(pass, end);
      await sleep(250); // late duplicates count too
      if (!running(target.process.child)) throw new Error(`${target.name} exited`);
      const delivery: Delivery = {
        expected,
        delivered: next.unique,
        duplicates: next.duplicates,
        stray: next.stray,
        frame_bytes: next.frameBytes,
        elapsed_ms: round(end - window.start, 1),
        failed: next.unique !== expected || next.duplicates > 0 || next.stray > 0,
      };
      const rate = delivery.failed ? NaN : round((expected * 1000) / (end - window.start), 0);
      const cpu = delivery.failed ? NaN : round((server * 1000) / expected, 2);
      return { delivery, rate, cpu };
    };
    const all = await measure(
      new Receipts('bench.all', clients, BROADCASTS),
      BROADCASTS,
      (seq) => ({
        type: 'bench.all',
        data: { seq, pad },
      }),
    );
    pass.deliveries.all = all.delivery;
    [m.all_per_s, m.all_cpu_us] = [all.rate, all.cpu];

    const subscribed = (client: number) => client % 2 === 0;
    const subscribers = sockets.filter((_, i) => subscribed(i));
    await windowed(subscribers.length, CONNECT_WINDOW, (i) => subscribers[i]!.subscribe([EVENT]));
    const event = await measure(
      new Receipts(EVENT, clients, BROADCASTS, subscribed),
      BROADCASTS,
      (seq) => ({ type: EVENT, data: { seq, pad }, target: { event: EVENT } }),
    );
    pass.deliveries.event = event.delivery;
    [m.event_per_s, m.event_cpu_us] = [event.rate, event.cpu];

    const user = await measure(new Receipts('bench.user', clients, 1), clients, (i) => ({
      type: 'bench.user',
      data: { seq: 0, pad },
      target: { users: [identities[i]!.user] },
    }));
    pass.deliveries.user = user.delivery;
    [m.user_per_s, m.user_cpu_us] = [user.rate, user.cpu];

    // W3: ping latency, PING_CLIENTS clients each sending sequentially, all at once; after a
    // warm-up round whose CPU per ping is reported on its own.
    const pingers = sockets.slice(0, PING_CLIENTS);
    window = new Window(target);
    const warmup = await pingEach(pingers, WARMUP_PINGS_PER_CLIENT);
    m.ping_warmup_cpu_us = round((window.close(pass) * 1000) / warmup.length, 1);
    window = new Window(target);
    const latencies = await pingEach(pingers, PINGS_PER_CLIENT);
    m.ping_cpu_us = round((window.close(pass) * 1000) / latencies.length, 1);
    latencies.sort((a, b) => a - b);
    m.ping_p50_ms = round(percentile(latencies, 50), 3);
    m.ping_p99_ms = round(percentile(latencies, 99), 3);
    m.ping_max_ms = round(latencies.at(-1)!, 3);

    // W3 and W4 again, in rounds alternating with a raw-ws companion: for the module only,
    // whose bars these are (with every target the bench outgrew its 10 minutes on a busy machine).
    if (target.name === 'raw-ws') {
      m.ping_cpu_interleaved = m.ping_p50_interleaved = 1;
      m.connect_per_s_interleaved = m.connect_cpu_interleaved = 1;
    } else if (target.name === 'module') {
      const ratios = await interleaved(target, pingers, identities, CONNECT_WINDOW);
      m.ping_cpu_interleaved = ratios.pingCpu;
      m.ping_p50_interleaved = ratios.pingP50;
      m.connect_per_s_interleaved = ratios.connectRate;
      m.connect_cpu_interleaved = ratios.connectCpu;
    }
  } catch (error) {
    pass.error = error instanceof Error ? error.message : String(error);
    if (!running(target.process.child))
      pass.error += `; ${target.name} exited: ${target.process.output().slice(-1000)}`;
  } finally {
    for (const socket of sockets) socket?.close();
    trigger.close();
  }
  return pass;
}
