/**
 * What coalescing costs and buys: the module as shipped (a fan-out's frames for one socket held
 * corked until the end of the turn, direct replies written at once) against the module writing
 * every frame at once (`off`) and the module holding replies too (`all`), on the same load:
 * W3 pings alone, a W1 burst to everyone (with each delivery's latency), and pings during a burst.
 *
 *   npm run bench:coalescing [-- --clients 1000] [--runs 3]
 *
 * One fresh module process per pass (bench/targets/coalescing-mode.ts sets the mode), the modes'
 * order rotating between runs; ratios to the shipped mode are taken within a run.
 */
import { fileURLToPath } from 'node:url';
import { option } from './lib/cli.js';
import { jwt } from './lib/jwt.js';
import {
  cpuMsPrecise,
  pinLoadToCore0,
  requireOpenFiles,
  runGuarded,
  STEP_TIMEOUT_MS,
  until,
} from './lib/processes.js';
import { median, percentile, round } from './lib/stats.js';
import { connectAll, type LoadClient, pingEach } from './load/clients.js';
import { startTarget, type Target } from './load/targets.js';
import { Trigger } from './load/trigger-client.js';
import { writeResults } from './lib/results.js';
import { environment } from './report/environment.js';
import { COALESCING_MODES, type CoalescingMode } from './targets/coalescing-mode.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // build/bench/ -> repo root
const CLIENTS = option('--clients', 1000);
const RUNS = option('--runs', 3);
const TIMEOUT_MS = option('--timeout-s', 600) * 1000;
const PING_CLIENTS = 100;
const WARMUP_PINGS = 100; // per client, as W3
const PINGS = 200; // per client, as W3
const BROADCASTS = 100; // to everyone, as W1
const MIXED_BROADCASTS = 200;
const MIXED_PINGS = 50; // per client, while MIXED_BROADCASTS are delivered
const PAD = 'x'.repeat(120); // a ~200-byte frame, as W1
const TYPE = 'bench.coalescing';

const METRICS = {
  ping_p50_ms: 'ping p50 ms',
  ping_p99_ms: 'ping p99 ms',
  ping_cpu_us: 'CPU µs/ping',
  fanout_per_s: 'fan-out deliveries/s',
  fanout_cpu_us: 'CPU µs/delivery',
  delivery_p50_ms: 'delivery latency p50 ms',
  delivery_p99_ms: 'delivery latency p99 ms',
  mixed_ping_p50_ms: 'ping p50 ms during fan-out',
  mixed_ping_p99_ms: 'ping p99 ms during fan-out',
} as const;
type Metric = keyof typeof METRICS;
type Pass = { mode: CoalescingMode; run: number } & Record<Metric, number>;

/** Receipt times of the broadcasts' frames, against when each broadcast was posted. */
class Deliveries {
  private readonly posted = new Map<number, number>();
  latencies: number[] = [];

  post(seq: number): object {
    this.posted.set(seq, performance.now());
    return { type: TYPE, data: { seq, pad: PAD } };
  }

  readonly onMessage = (_client: number, type: string, data: unknown): void => {
    const seq = (data as { seq?: unknown } | undefined)?.seq;
    const at = typeof seq === 'number' ? this.posted.get(seq) : undefined;
    if (type === TYPE && at !== undefined) this.latencies.push(performance.now() - at);
  };

  /** Waits (bounded) until `count` frames arrived since the last reset. */
  async arrived(count: number): Promise<number> {
    await until(
      () => `${this.latencies.length} of ${count} deliveries`,
      () => this.latencies.length >= count,
      STEP_TIMEOUT_MS,
      2,
    );
    return performance.now();
  }
}

async function measure(mode: CoalescingMode, run: number): Promise<Pass> {
  const target: Target = await startTarget('module', CLIENTS, { env: { BENCH_COALESCE: mode } });
  const trigger = new Trigger(target.port, `Bearer ${jwt({ sub: 'bench-admin', role: 'admin' })}`);
  const deliveries = new Deliveries();
  let sockets: LoadClient[] = [];
  try {
    const identities = Array.from({ length: CLIENTS }, (_, index) => {
      const user = `bench-user-${index}`;
      return { index, user, token: jwt({ sub: user }) };
    });
    sockets = await connectAll(target.connect, target.port, identities, 200, deliveries.onMessage);
    const pingers = sockets.slice(0, PING_CLIENTS);
    const cpu = () => cpuMsPrecise(target.process.child);

    // Warm-up of both paths, not measured.
    await pingEach(pingers, WARMUP_PINGS);
    let seq = 0;
    await trigger.burst(16, () => deliveries.post(seq++));
    await deliveries.arrived(16 * CLIENTS);

    let before = cpu();
    const pings = (await pingEach(pingers, PINGS)).sort((a, b) => a - b);
    const pingCpu = ((cpu() - before) * 1000) / pings.length;

    deliveries.latencies = [];
    before = cpu();
    const started = performance.now();
    await trigger.burst(BROADCASTS, () => deliveries.post(seq++));
    const ended = await deliveries.arrived(BROADCASTS * CLIENTS);
    const fanoutCpu = ((cpu() - before) * 1000) / (BROADCASTS * CLIENTS);
    const latencies = deliveries.latencies.sort((a, b) => a - b);

    deliveries.latencies = [];
    const burst = trigger.burst(MIXED_BROADCASTS, () => deliveries.post(seq++));
    const mixed = (await pingEach(pingers, MIXED_PINGS)).sort((a, b) => a - b);
    await burst;
    await deliveries.arrived(MIXED_BROADCASTS * CLIENTS);

    return {
      mode,
      run,
      ping_p50_ms: round(percentile(pings, 50), 3),
      ping_p99_ms: round(percentile(pings, 99), 3),
      ping_cpu_us: round(pingCpu, 1),
      fanout_per_s: round((BROADCASTS * CLIENTS * 1000) / (ended - started), 0),
      fanout_cpu_us: round(fanoutCpu, 2),
      delivery_p50_ms: round(percentile(latencies, 50), 2),
      delivery_p99_ms: round(percentile(latencies, 99), 2),
      mixed_ping_p50_ms: round(percentile(mixed, 50), 3),
      mixed_ping_p99_ms: round(percentile(mixed, 99), 3),
    };
  } finally {
    for (const socket of sockets) socket.close();
    trigger.close();
    await target.stop();
  }
}

function table(passes: Pass[]): string {
  const keys = Object.keys(METRICS) as Metric[];
  const shipped = (run: number) => passes.find((p) => p.mode === 'fan-out' && p.run === run);
  const cell = (mode: CoalescingMode, key: Metric) => {
    const own = passes.filter((p) => p.mode === mode);
    const value = median(own.map((p) => p[key]));
    if (mode === 'fan-out') return `${value}`;
    const ratio = median(own.map((p) => p[key] / (shipped(p.run)?.[key] ?? NaN)));
    return `${value} (×${ratio.toFixed(2)})`;
  };
  return [
    `| coalescing | ${keys.map((k) => METRICS[k]).join(' | ')} |`,
    `| --- | ${keys.map(() => '--:').join(' | ')} |`,
    ...COALESCING_MODES.map(
      (mode) => `| ${mode} | ${keys.map((key) => cell(mode, key)).join(' | ')} |`,
    ),
  ].join('\n');
}

async function main(): Promise<void> {
  requireOpenFiles(CLIENTS + 500, `${CLIENTS} clients`);
  pinLoadToCore0();
  console.log(`coalescing: modes ${COALESCING_MODES.join(', ')}; C = ${CLIENTS}; ${RUNS} run(s)`);
  const passes: Pass[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const order = COALESCING_MODES.map((_, i, all) => all[(i + run - 1) % all.length]!);
    for (const mode of order) {
      const pass = await measure(mode, run);
      passes.push(pass);
      console.log(
        `run ${run} ${mode}: ping p50 ${pass.ping_p50_ms} ms, fan-out ${pass.fanout_per_s}/s, ` +
          `delivery p50 ${pass.delivery_p50_ms} ms, ping during fan-out p50 ${pass.mixed_ping_p50_ms} ms`,
      );
    }
  }
  const env = environment(ROOT);
  console.log(`\n${table(passes)}\n`);
  const options = { clients: CLIENTS, runs: RUNS };
  const file = writeResults('coalescing', env.date, { environment: env, options, passes });
  console.log(`written ${file}`);
}

runGuarded(main, TIMEOUT_MS);
