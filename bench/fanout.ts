/**
 * Fan-out benchmark: broadcasts through the admin API reaching every client, with 1 demo instance
 * (in-process bus) against 2 instances sharing a private redis-server; same clients, same run.
 *
 *   npm run build && npm run bench:cluster [-- --quick] [--clients N] [--messages N] [--runs N] [--timeout-s N]
 *
 * Servers and redis-server are child processes pinned to core 1, this process (the load: the ws
 * clients and the broadcast loop) to core 0, when taskset and 2+ cores exist. Everything is on
 * 127.0.0.1; every wait is bounded; children are killed at the end, on error, SIGINT and timeout.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { option, quick } from './lib/cli.js';
import { adminApi, DEMO, type DemoServer, startDemoServer } from './lib/demo-server.js';
import { jwt } from './lib/jwt.js';
import { writeResults } from './lib/results.js';
import {
  type Child,
  CORES,
  cpuMs,
  freePort,
  machineBusyMs,
  onPath,
  pinLoadToCore0,
  pinned,
  runGuarded,
  running,
  STEP_TIMEOUT_MS,
  startChild,
  stopChild,
  until,
} from './lib/processes.js';
import { median, round, sum } from './lib/stats.js';
import { windowed } from './lib/windowed.js';

const EVENT = 'bench.fanout';
const WARMUP_EVENT = 'bench.warmup';
const WARMUPS = 5;
const FRAME_BYTES = 200; // target size of one delivered frame
const CONNECT_CONCURRENCY = 50;
const ADMIN_REQUESTS_PER_ID = 100; // the admin API allows 120 requests per admin per minute

const CLIENTS = option('--clients', quick ? 200 : 1000);
const MESSAGES = option('--messages', 100);
const RUNS = option('--runs', quick ? 1 : 3);
const TIMEOUT_MS = option('--timeout-s', quick ? 120 : 600) * 1000;

// ------------------------------------------------------------------ redis-server

async function startRedis(): Promise<(Child & { url: string }) | undefined> {
  if (!onPath('redis-server')) return undefined;
  const port = await freePort();
  const redis = startChild(
    [
      'redis-server',
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    process.env,
  );
  await until(
    () => `redis-server on port ${port} answering PING; output: ${redis.output()}`,
    () => redisPing(port),
  );
  return { ...redis, url: `redis://127.0.0.1:${port}` };
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

// ------------------------------------------------------------------ demo servers and their API

type Server = DemoServer;

async function startServer(redisUrl: string | undefined, namespace: string): Promise<Server> {
  return startDemoServer({
    // Limits out of the way: the benchmark measures delivery, not admission.
    REALTIME_MAX_TOTAL_CONNECTIONS: String(CLIENTS * 2 + 100),
    REALTIME_MAX_CONNECTIONS_PER_USER: '10',
    REALTIME_RATE_LIMIT_MESSAGES: '1000000',
    ...(redisUrl ? { REDIS_URL: redisUrl, REALTIME_REDIS_NAMESPACE: namespace } : {}),
  });
}

// ------------------------------------------------------------------ clients

/** What the clients received: one count per (client, message seq). */
class Receipts {
  readonly counts = new Uint8Array(CLIENTS * MESSAGES);
  readonly ids: Array<string | undefined> = [];
  unique = 0;
  duplicates = 0;
  warmups = 0;
  stray = 0; // frames that are not JSON, of another type, or with a bad seq
  idMismatches = 0; // one seq seen with two ids
  frameBytes = 0;
  last = 0; // performance.now() of the last receipt

  record(client: number, raw: Buffer): void {
    let message: any;
    try {
      message = JSON.parse(raw.toString());
    } catch {
      this.stray++;
      return;
    }
    if (message.type === WARMUP_EVENT) {
      this.warmups++;
      return;
    }
    const seq = message.data?.seq;
    if (message.type !== EVENT || !Number.isInteger(seq) || seq < 0 || seq >= MESSAGES) {
      this.stray++;
      return;
    }
    const at = client * MESSAGES + seq;
    if (this.counts[at] === 0) this.unique++;
    else this.duplicates++;
    this.counts[at] = Math.min(255, this.counts[at]! + 1);
    if (this.ids[seq] === undefined) this.ids[seq] = message.id;
    else if (this.ids[seq] !== message.id) this.idMismatches++;
    this.frameBytes = raw.length;
    this.last = performance.now();
  }

  /** Clients that missed at least one message. */
  clientsWithLoss(): number {
    let clients = 0;
    for (let c = 0; c < CLIENTS; c++) {
      if (this.counts.subarray(c * MESSAGES, (c + 1) * MESSAGES).includes(0)) clients++;
    }
    return clients;
  }
}

interface Clients {
  sockets: WebSocket[];
  receipts: Receipts;
  /** Close codes of connections the server closed during the run. */
  closes: Record<number, number>;
  stop: () => void;
}

/** Opens CLIENTS clients (each its own user), client i on servers[i % servers.length]. */
async function connectClients(servers: Server[]): Promise<Clients> {
  const clients: Clients = {
    sockets: [],
    receipts: new Receipts(),
    closes: {},
    stop: () => undefined,
  };
  let stopping = false;
  clients.stop = () => {
    stopping = true;
    for (const socket of clients.sockets) socket.terminate();
  };
  const open = (i: number) =>
    new Promise<WebSocket>((resolve, reject) => {
      const port = servers[i % servers.length]!.port;
      const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
        headers: { authorization: `Bearer ${jwt({ sub: `bench-user-${i}` })}` },
      });
      clients.sockets.push(socket);
      let established = false;
      const timer = setTimeout(
        () => reject(new Error(`client ${i}: no connection.established`)),
        STEP_TIMEOUT_MS,
      );
      socket.on('message', (raw: Buffer) => {
        if (established) return clients.receipts.record(i, raw);
        established = JSON.parse(raw.toString()).type === 'connection.established';
        clearTimeout(timer);
        if (established) resolve(socket);
        else reject(new Error(`client ${i}: first message ${raw.toString().slice(0, 200)}`));
      });
      socket.on('error', (error) => reject(new Error(`client ${i}: ${error.message}`)));
      socket.once('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`client ${i}: closed ${code} before connection.established`));
        if (!stopping) clients.closes[code] = (clients.closes[code] ?? 0) + 1;
      });
    });
  try {
    await windowed(CLIENTS, CONNECT_CONCURRENCY, async (i) => void (await open(i)));
  } catch (error) {
    clients.stop();
    throw error;
  }
  return clients;
}

// ------------------------------------------------------------------ one scenario

interface Result {
  scenario: 'A' | 'B';
  run: number;
  instances: number;
  clients: number;
  messages: number;
  expected_deliveries: number;
  deliveries: number;
  lost: number;
  clients_with_loss: number;
  duplicates: number;
  stray_frames: number;
  id_mismatches: number;
  unexpected_closes: Record<number, number>;
  reached_ok: number; // broadcasts whose connections_reached was CLIENTS
  reached_values: number[]; // distinct connections_reached values seen
  frame_bytes: number;
  elapsed_ms: number; // first send to last receipt
  deliveries_per_s: number;
  post_ms_median: number;
  server_cpu_ms: number[]; // per demo process, over the measured window
  server_cpu_us_per_delivery: number;
  redis_cpu_us_per_delivery: number | null;
  load_cpu_percent: number;
  /** CPU used by other processes of the machine meanwhile, % of one core: it skews the numbers. */
  other_cpu_percent: number;
}

async function scenario(
  name: 'A' | 'B',
  run: number,
  redis?: Child & { url: string },
): Promise<Result> {
  const instances = name === 'A' ? 1 : 2;
  const namespace = `bench-${process.pid}-${run}`; // fresh: no keys or counters of earlier runs
  const servers: Server[] = [];
  let clients: Clients | undefined;
  let adminRequests = 0; // a new admin id every ADMIN_REQUESTS_PER_ID requests (rate limit)
  const broadcast = (type: string, data: object) =>
    adminApi(
      servers[0]!.port,
      'broadcast',
      `bench-admin-${Math.floor(adminRequests++ / ADMIN_REQUESTS_PER_ID)}`,
      { type, data },
    );
  try {
    for (let i = 0; i < instances; i++)
      servers.push(await startServer(name === 'B' ? redis!.url : undefined, namespace));
    clients = await connectClients(servers);
    const { receipts } = clients;
    // Every instance sees the others, and the cluster counts every client.
    let stats: any;
    await until(
      () =>
        `cluster of ${instances} with ${CLIENTS} connections; last stats ${JSON.stringify(stats)?.slice(0, 300)}`,
      async () => {
        stats = await adminApi(servers[0]!.port, 'stats', 'bench-probe').catch(
          (e: Error) => e.message,
        );
        return stats?.total_connections === CLIENTS && stats.instances.length === instances;
      },
      STEP_TIMEOUT_MS,
      250, // stays under the admin rate limit
    );
    for (let i = 0; i < WARMUPS; i++) await broadcast(WARMUP_EVENT, { i });
    await until(
      () => `warm-up broadcasts delivered (${receipts.warmups} of ${CLIENTS * WARMUPS})`,
      () => receipts.warmups >= CLIENTS * WARMUPS,
    );

    const padding =
      FRAME_BYTES -
      JSON.stringify({
        type: EVENT,
        data: { seq: 10, pad: '' },
        timestamp: new Date().toISOString(),
        id: randomUUID(),
        source: 'admin_broadcast',
      }).length;
    const pad = 'x'.repeat(Math.max(0, padding));
    const cpuBefore = servers.map((s) => cpuMs(s.child));
    const redisBefore = redis && name === 'B' ? cpuMs(redis.child) : 0;
    const loadBefore = process.cpuUsage();
    const machineBefore = machineBusyMs();
    const start = performance.now();
    const reached: number[] = [];
    const postMs: number[] = [];
    const ids: string[] = [];
    for (let seq = 0; seq < MESSAGES; seq++) {
      const sent = performance.now();
      const answer = await broadcast(EVENT, { seq, pad });
      postMs.push(performance.now() - sent);
      reached.push(answer.connections_reached);
      ids.push(answer.message_id);
    }
    const expected = CLIENTS * MESSAGES;
    await until(
      () => `all deliveries (${receipts.unique} of ${expected})`,
      () => receipts.unique >= expected,
      STEP_TIMEOUT_MS,
      5,
    ).catch(() => undefined); // loss is a result, reported below
    for (const s of servers)
      if (!running(s.child))
        throw new Error(`demo on port ${s.port} exited during the run: ${s.output()}`);
    const end = receipts.unique > 0 ? receipts.last : performance.now();
    const serverCpu = servers.map((s, i) => cpuMs(s.child) - cpuBefore[i]!);
    const redisCpu = redis && name === 'B' ? cpuMs(redis.child) - redisBefore : undefined;
    const load = process.cpuUsage(loadBefore);
    const machine = machineBusyMs() - machineBefore;
    await sleep(250); // late duplicates, if any, are counted too

    const delivered = receipts.unique;
    const perDelivery = (ms: number) => (delivered > 0 ? (ms * 1000) / delivered : NaN);
    const elapsed = end - start;
    const loadMs = (load.user + load.system) / 1000;
    const otherMs = machine - sum(serverCpu) - (redisCpu ?? 0) - loadMs;
    return {
      scenario: name,
      run,
      instances,
      clients: CLIENTS,
      messages: MESSAGES,
      expected_deliveries: expected,
      deliveries: delivered,
      lost: expected - delivered,
      clients_with_loss: receipts.clientsWithLoss(),
      duplicates: receipts.duplicates,
      stray_frames: receipts.stray,
      id_mismatches:
        receipts.idMismatches +
        ids.filter((id, seq) => receipts.ids[seq] !== undefined && receipts.ids[seq] !== id).length,
      unexpected_closes: { ...clients.closes },
      reached_ok: reached.filter((r) => r === CLIENTS).length,
      reached_values: [...new Set(reached)].sort((a, b) => a - b),
      frame_bytes: receipts.frameBytes,
      elapsed_ms: round(elapsed, 1),
      deliveries_per_s: round((delivered * 1000) / elapsed, 0),
      post_ms_median: round(median(postMs), 2),
      server_cpu_ms: serverCpu,
      server_cpu_us_per_delivery: round(perDelivery(sum(serverCpu)), 2),
      redis_cpu_us_per_delivery: redisCpu === undefined ? null : round(perDelivery(redisCpu), 2),
      load_cpu_percent: round((loadMs / elapsed) * 100, 0),
      other_cpu_percent: round((Math.max(0, otherMs) / elapsed) * 100, 0),
    };
  } finally {
    clients?.stop();
    await Promise.all(servers.map((s) => stopChild(s.child)));
  }
}

// ------------------------------------------------------------------ summary

function summarize(results: Result[]) {
  const scenarios = (['A', 'B'] as const)
    .map((name) => results.filter((r) => r.scenario === name))
    .filter((rs) => rs.length > 0)
    .map((rs) => ({
      scenario: rs[0]!.scenario,
      instances: rs[0]!.instances,
      runs: rs.length,
      deliveries_per_s: median(rs.map((r) => r.deliveries_per_s)),
      deliveries_per_s_runs: rs.map((r) => r.deliveries_per_s),
      lost: sum(rs.map((r) => r.lost)),
      duplicates: sum(rs.map((r) => r.duplicates)),
      reached_ok: `${sum(rs.map((r) => r.reached_ok))}/${rs.length * MESSAGES}`,
      server_cpu_us_per_delivery: median(rs.map((r) => r.server_cpu_us_per_delivery)),
      redis_cpu_us_per_delivery:
        rs[0]!.redis_cpu_us_per_delivery === null
          ? null
          : median(rs.map((r) => r.redis_cpu_us_per_delivery ?? NaN)),
      post_ms_median: median(rs.map((r) => r.post_ms_median)),
      load_cpu_percent: median(rs.map((r) => r.load_cpu_percent)),
      other_cpu_percent_max: Math.max(...rs.map((r) => r.other_cpu_percent)),
    }));
  // B/A within each run (the same clients, the same minute), then the median over runs.
  const ratio = (field: 'deliveries_per_s' | 'server_cpu_us_per_delivery') => {
    const perRun = [...new Set(results.map((r) => r.run))].map((run) => {
      const a = results.find((r) => r.run === run && r.scenario === 'A');
      const b = results.find((r) => r.run === run && r.scenario === 'B');
      return a && b ? b[field] / a[field] : NaN;
    });
    return { median: round(median(perRun), 3), runs: perRun.map((v) => round(v, 3)) };
  };
  return {
    scenarios,
    max_other_cpu_percent: Math.max(...results.map((r) => r.other_cpu_percent)),
    b_over_a:
      scenarios.length === 2
        ? {
            deliveries_per_s: ratio('deliveries_per_s'),
            server_cpu_us_per_delivery: ratio('server_cpu_us_per_delivery'),
          }
        : null,
  };
}

function table(summary: ReturnType<typeof summarize>): string {
  const rows = [
    '| scenario | instances | deliveries/s (median) | per run | lost | duplicates | connections_reached = C | server CPU µs/delivery | redis CPU µs/delivery | POST median ms | load CPU % | other processes CPU % (max) |',
    '| --- | --: | --: | --- | --: | --: | --: | --: | --: | --: | --: | --: |',
  ];
  for (const s of summary.scenarios) {
    const label = s.scenario === 'A' ? 'A: in-process bus' : 'B: Redis bus';
    rows.push(
      `| ${label} | ${s.instances} | ${Math.round(s.deliveries_per_s)} | ${s.deliveries_per_s_runs.join(', ')} | ${s.lost} | ${s.duplicates} | ${s.reached_ok} | ${s.server_cpu_us_per_delivery.toFixed(2)} | ${s.redis_cpu_us_per_delivery?.toFixed(2) ?? '—'} | ${s.post_ms_median.toFixed(2)} | ${s.load_cpu_percent} | ${s.other_cpu_percent_max} |`,
    );
  }
  const ba = summary.b_over_a;
  if (ba) {
    rows.push(
      '',
      `B/A (median of per-run ratios): deliveries/s ×${ba.deliveries_per_s.median} (runs ${ba.deliveries_per_s.runs.join(', ')}), ` +
        `server CPU per delivery ×${ba.server_cpu_us_per_delivery.median} (runs ${ba.server_cpu_us_per_delivery.runs.join(', ')})`,
    );
  }
  rows.push(
    '',
    `Other processes on the machine used up to ${summary.max_other_cpu_percent}% of a core (of ${CORES * 100}%) ` +
      'during a measured window; well above 0, they competed with the servers or the load.',
  );
  return rows.join('\n');
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  if (!existsSync(DEMO)) throw new Error(`${DEMO} is missing: run npm run build first`);
  pinLoadToCore0();
  const redis = await startRedis();
  if (!redis) console.warn('redis-server not found on PATH: running scenario A (1 instance) only');
  console.log(
    `fan-out: ${CLIENTS} clients, ${MESSAGES} broadcasts of ~${FRAME_BYTES} B, ${RUNS} run(s); ` +
      (pinned ? 'servers on core 1, load on core 0' : 'not pinned (no taskset or 1 core)'),
  );
  const results: Result[] = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      // Alternate the order so that drift (warm caches, thermal) does not favour one scenario.
      const order: Array<'A' | 'B'> = !redis ? ['A'] : run % 2 ? ['A', 'B'] : ['B', 'A'];
      for (const name of order) {
        const result = await scenario(name, run, redis);
        results.push(result);
        console.log(
          `run ${run} ${name}: ${result.deliveries_per_s} deliveries/s, lost ${result.lost}, duplicates ${result.duplicates}, ` +
            `reached ok ${result.reached_ok}/${MESSAGES}, server ${result.server_cpu_us_per_delivery} µs/delivery, ` +
            `other processes ${result.other_cpu_percent}% CPU`,
        );
        const { lost, duplicates, stray_frames, id_mismatches, unexpected_closes } = result;
        if (lost || duplicates || stray_frames || id_mismatches || result.reached_ok < MESSAGES)
          console.warn(
            `  WARNING run ${run} ${name}: ${JSON.stringify({ lost, clients_with_loss: result.clients_with_loss, duplicates, stray_frames, id_mismatches, reached_values: result.reached_values })}`,
          );
        if (Object.keys(unexpected_closes).length > 0)
          console.warn(
            `  WARNING run ${run} ${name}: server closed clients ${JSON.stringify(unexpected_closes)}`,
          );
      }
    }
  } finally {
    if (redis) await stopChild(redis.child);
  }
  const summary = summarize(results);
  console.log(`\n${table(summary)}\n`);
  const machine = {
    cores: CORES,
    cpu: cpus()[0]?.model,
    node: process.version,
    pinned,
  };
  const date = new Date().toISOString();
  const options = { clients: CLIENTS, messages: MESSAGES, runs: RUNS, quick };
  const file = writeResults('fanout', date, { date, machine, options, summary, results });
  console.log(`written ${file}`);
}

runGuarded(main, TIMEOUT_MS);
