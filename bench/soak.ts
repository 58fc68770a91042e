/**
 * Soak test: one demo server holds C connections for M minutes under churn and traffic while its
 * RSS, heap after a full GC, open file descriptors and connection count are sampled every 10 s.
 *
 *   npm run build && npm run soak [-- --quick] [--connections N] [--minutes N] [--linger-s N]
 *
 * Defaults: 5000 connections, 5 minutes; --quick: 500 connections, 1 minute; --linger-s N adds a
 * sample N seconds after every connection closed (do caches that expire give the heap back?).
 * The server runs as `node --expose-gc --import build/bench/soak-probe.js dist/demo/main.js`
 * pinned to core 1 (the probe answers heap-after-GC on a side port), this process (the clients)
 * on core 0. Exits 1 when the heap grows faster than HEAP_SLOPE_BOUND_MB_PER_MIN over the second
 * half, when fds leak, or when pings fail or connections close unexpectedly beyond a small
 * tolerance. See bench/README.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { option } from './lib/cli.js';
import { adminApi, type DemoServer, ROOT, startDemoServer } from './lib/demo-server.js';
import { jwt } from './lib/jwt.js';
import { writeResults } from './lib/results.js';
import {
  CORES,
  cpuMs,
  freePort,
  pinLoadToCore0,
  pinned,
  requireOpenFiles,
  runGuarded,
  running,
  STEP_TIMEOUT_MS,
  stopChild,
  until,
} from './lib/processes.js';
import { median, round } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const CONNECTIONS = option('--connections', quick ? 500 : 5000);
const MINUTES = option('--minutes', quick ? 1 : 5);
const RUN_MS = MINUTES * 60_000;
const LINGER_S = process.argv.includes('--linger-s') ? option('--linger-s', 0) : 0; // idle, then a `later` sample

const TICK_MS = 10_000; // samples, churn, and each connection's ping period
const PING_SLOTS = 100; // connection i pings in slot i % 100 of every 10 s, one slot per 100 ms
const PING_TIMEOUT_MS = 10_000; // a ping unanswered this long on a still-open connection failed
const CHURN_SHARE = 0.02; // of the connections, closed and reopened every TICK_MS
const SUBSCRIBE_EVERY = 3; // every 3rd ping of a connection also toggles a room subscription
const ROOMS = 20;
const CONNECT_CONCURRENCY = 50;
const USERS = Math.ceil(CONNECTIONS / 2); // two connections a user, under the per-user limit of 4
const BROADCAST_EVERY_MS = 1000;

/**
 * Heap bound. Churn replaces 2% of the connections every 10 s: 600 connections a minute at 5000.
 * Leaking one small object graph per replaced connection (~1.7 KB: a registry entry with its
 * maps) would grow the heap by 1 MB/min, so a slope above that after warm-up is a leak, not
 * noise: heap after a full GC varies by well under 1 MB between samples. The message history
 * (PROTOCOL 9) fills for its 2-minute age bound and then stays flat; the second half of the
 * default run starts at 2.5 minutes. With --quick the second half is 30 s (4 samples), so its
 * slope is rough: a smoke test, not a verdict.
 */
const HEAP_SLOPE_BOUND_MB_PER_MIN = 1;
/** fds that may differ between the two comparisons: the admin and probe HTTP sockets in flight. */
const FD_TOLERANCE = 10;
/** Failed pings and unexpected closes allowed, as a share of pings sent / of the connections. */
const FAILURE_SHARE = 0.001;

const SAMPLER = 'soak-sampler';
const SENDER = 'soak-sender'; // ~126 admin requests a minute in all: the demo allows 600 per admin

// ------------------------------------------------------------------ server and samples

interface Sample {
  phase: 'idle' | 'run' | 'end' | 'closed' | 'later';
  t_s: number; // since the run phase started
  connections: number; // the server's total_connections
  client_open: number; // connections this process holds established
  rss_mb: number;
  heap_used_mb: number; // after a full GC
  heap_total_mb: number; // what V8 holds for the heap, after the GC
  external_mb: number;
  fds: number;
  server_cpu_percent: number; // since the previous sample, of one core
}

let server: DemoServer;
let probePort = 0;
let runStart = 0;
let lastCpu = { at: 0, ms: 0 };

async function sample(phase: Sample['phase']): Promise<Sample> {
  if (!running(server.child)) throw new Error(`the server exited: ${server.output()}`);
  const stats = await adminApi(server.port, 'stats', SAMPLER);
  const memory = await fetch(`http://127.0.0.1:${probePort}/memory`, {
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  }).then((r) => r.json() as Promise<NodeJS.MemoryUsage>);
  const pid = server.child.pid!;
  const rssKb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const now = performance.now();
  const cpu = cpuMs(server.child);
  const busy = lastCpu.at ? ((cpu - lastCpu.ms) / (now - lastCpu.at)) * 100 : 0;
  lastCpu = { at: now, ms: cpu };
  const mb = (bytes: number) => round(bytes / 2 ** 20, 2);
  return {
    phase,
    t_s: runStart ? Math.round((Date.now() - runStart) / 1000) : 0,
    connections: stats.total_connections,
    client_open: clients.filter((c) => c.established).length,
    rss_mb: mb(Number(rssKb) * 1024),
    heap_used_mb: mb(memory.heapUsed),
    heap_total_mb: mb(memory.heapTotal),
    external_mb: mb(memory.external),
    fds,
    server_cpu_percent: Math.round(busy),
  };
}

// ------------------------------------------------------------------ clients

interface Client {
  index: number;
  user: string;
  socket?: WebSocket;
  generation: number; // bumped at every open: tells a ping of an earlier socket apart
  established: boolean;
  closing: boolean; // this process closes it: not an unexpected close
  subscribed: boolean;
  pings: number;
}

const counts = {
  connects: 0,
  connect_failures: 0,
  churn_terminated: 0,
  churn_closed: 0,
  pings_sent: 0,
  pings_answered: 0,
  pings_failed: 0, // unanswered within PING_TIMEOUT_MS while the connection stayed open
  pings_abandoned: 0, // the connection was closed (churn) before the answer
  subscribes_sent: 0,
  unsubscribes_sent: 0,
  broadcasts_sent: 0, // to everyone
  targeted_sends: 0, // to one user or to the subscribers of one room name
  admin_failures: 0,
  connections_reached: 0, // sum over the admin sends
  messages_received: 0,
  unexpected_closes: 0,
};
const receivedByType: Record<string, number> = {};
const closeCodes: Record<number, number> = {};
const rttHistogram = new Uint32Array(PING_TIMEOUT_MS + 1); // ms -> pongs
const pending = new Map<string, { at: number; client: Client; generation: number }>();
const clients: Client[] = Array.from({ length: CONNECTIONS }, (_, index) => ({
  index,
  user: `soak-user-${index % USERS}`,
  generation: 0,
  established: false,
  closing: false,
  subscribed: false,
  pings: 0,
}));
const down = new Set<Client>(); // closed by the server or failed to open: reopened on the next tick
let stopping = false;
let tokenTtlS = 3600;

/** Opens `client`; resolves on connection.established, rejects on anything else (bounded). */
function connect(client: Client): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const generation = ++client.generation;
    const token = jwt({ sub: client.user }, tokenTtlS);
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, ['bearer', token], {
      handshakeTimeout: STEP_TIMEOUT_MS,
    });
    Object.assign(client, { socket, established: false, closing: false, subscribed: false });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`connection ${client.index}: no connection.established`));
    }, STEP_TIMEOUT_MS);
    socket.on('message', (raw: Buffer) => {
      counts.messages_received++;
      let message: any;
      try {
        message = JSON.parse(raw.toString());
      } catch {
        message = { type: '(not JSON)' };
      }
      receivedByType[message.type] = (receivedByType[message.type] ?? 0) + 1;
      if (message.type === 'connection.established') {
        clearTimeout(timer);
        client.established = true;
        counts.connects++;
        resolve();
      } else if (message.type === 'pong') answered(message.in_reply_to);
    });
    socket.on('error', () => undefined); // the close event follows and tells
    socket.once('close', (code) => {
      clearTimeout(timer);
      if (client.generation !== generation) return;
      const wasOpen = client.established;
      client.established = false;
      reject(new Error(`connection ${client.index}: closed ${code} before connection.established`));
      if (stopping || client.closing) return;
      if (wasOpen) {
        counts.unexpected_closes++;
        closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      }
      down.add(client);
    });
  });
}

async function reopen(client: Client): Promise<void> {
  down.delete(client); // not reopened twice by overlapping ticks
  try {
    await connect(client);
  } catch {
    counts.connect_failures++;
    down.add(client);
  }
}

function answered(id: unknown): void {
  const entry = typeof id === 'string' ? pending.get(id) : undefined;
  if (!entry) return;
  pending.delete(id as string);
  counts.pings_answered++;
  rttHistogram[Math.min(PING_TIMEOUT_MS, Math.round(performance.now() - entry.at))]!++;
}

function send(client: Client, message: object): void {
  client.socket!.send(JSON.stringify(message));
}

let pingSeq = 0;
/** One 100 ms slot: its connections ping, a third of those also (un)subscribe; old pings expire. */
function pingSlot(slot: number): void {
  for (let i = slot; i < CONNECTIONS; i += PING_SLOTS) {
    const client = clients[i]!;
    if (!client.established || client.closing) continue;
    const id = `p${++pingSeq}`;
    pending.set(id, { at: performance.now(), client, generation: client.generation });
    send(client, { type: 'ping', id, data: { pingId: id } });
    counts.pings_sent++;
    if (++client.pings % SUBSCRIBE_EVERY !== 0) continue;
    const events = [`room:soak-${i % ROOMS}`];
    send(client, { type: client.subscribed ? 'unsubscribe' : 'subscribe', data: { events } });
    counts[client.subscribed ? 'unsubscribes_sent' : 'subscribes_sent']++;
    client.subscribed = !client.subscribed;
  }
  expirePings(PING_TIMEOUT_MS);
}

function expirePings(olderThanMs: number): void {
  const now = performance.now();
  for (const [id, entry] of pending) {
    if (now - entry.at < olderThanMs) break; // the Map is in send order
    pending.delete(id);
    const same = entry.client.generation === entry.generation && entry.client.established;
    counts[same ? 'pings_failed' : 'pings_abandoned']++;
  }
}

/** Closes 2% of the open connections, half abruptly (no close frame), half with 1000; reopens them. */
function churn(): Promise<unknown> {
  const open = clients.filter((c) => c.established && !c.closing);
  const picked = Math.min(open.length, Math.max(1, Math.round(CONNECTIONS * CHURN_SHARE)));
  const reopened: Array<Promise<void>> = [...down].map(reopen);
  for (let k = 0; k < picked; k++) {
    const at = k + Math.floor(Math.random() * (open.length - k));
    const client = open[at]!;
    open[at] = open[k]!; // partial Fisher-Yates: no connection picked twice
    client.closing = true;
    const closed = new Promise((resolve) => client.socket!.once('close', resolve));
    if (k % 2) {
      client.socket!.terminate();
      counts.churn_terminated++;
    } else {
      client.socket!.close(1000, 'soak churn');
      counts.churn_closed++;
    }
    const bounded = Promise.race([closed, sleep(STEP_TIMEOUT_MS)]);
    reopened.push(bounded.then(() => reopen(client)));
  }
  return Promise.all(reopened);
}

const postMs: number[] = []; // admin send round trips
/** Every second: a broadcast to everyone, and a send to one user or one room's subscribers, in turn. */
async function adminTraffic(untilMs: number): Promise<void> {
  for (let n = 0; Date.now() < untilMs; n++) {
    const next = Date.now() + BROADCAST_EVERY_MS;
    const target =
      n % 2
        ? { users: [`soak-user-${Math.floor(Math.random() * USERS)}`] }
        : { event: `room:soak-${n % ROOMS}` }; // its subscribers (`room` targets server-side members)
    const sends: Array<[object, 'broadcasts_sent' | 'targeted_sends']> = [
      [{ type: 'soak.broadcast', data: { n } }, 'broadcasts_sent'],
      [{ type: 'soak.targeted', data: { n }, target }, 'targeted_sends'],
    ];
    const post = async ([body, counter]: (typeof sends)[number]) => {
      const sent = performance.now();
      try {
        const answer = await adminApi(server.port, 'broadcast', SENDER, body);
        counts[counter]++;
        counts.connections_reached += answer.connections_reached;
        postMs.push(performance.now() - sent);
      } catch (error) {
        counts.admin_failures++;
        if (counts.admin_failures <= 3) console.warn(`admin send: ${(error as Error).message}`);
      }
    };
    await Promise.all(sends.map(post)); // a late answer delays the next second's sends
    await sleep(Math.max(0, next - Date.now()));
  }
}

async function connectAll(): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < CONNECTIONS) await connect(clients[next++]!);
  };
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker));
}

/** Waits until the server counts `expected` connections (and this process holds as many). */
async function settle(expected: number): Promise<void> {
  let stats: any;
  await until(
    () => `server at ${expected} connections; last total ${stats?.total_connections}`,
    async () => {
      stats = await adminApi(server.port, 'stats', SAMPLER);
      const held = clients.filter((c) => c.established).length;
      return stats.total_connections === expected && held === expected;
    },
    STEP_TIMEOUT_MS * 2,
    1000, // stays well under the admin rate limit
  );
}

// ------------------------------------------------------------------ report

/** Least-squares slope of `field` over `samples`, per minute. */
function slopePerMinute(
  samples: Sample[],
  field: 'rss_mb' | 'heap_used_mb' | 'heap_total_mb',
): number {
  const n = samples.length;
  if (n < 2) return NaN;
  const xs = samples.map((s) => s.t_s / 60);
  const ys = samples.map((s) => s[field]);
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return round(num / den, 3);
}

function percentile(p: number): number {
  const total = rttHistogram.reduce((a, b) => a + b, 0);
  let seen = 0;
  for (let ms = 0; ms < rttHistogram.length; ms++) {
    seen += rttHistogram[ms]!;
    if (seen >= total * p) return ms;
  }
  return NaN;
}

function table(samples: Sample[]): string {
  const rows = [
    '| phase | t (s) | connections | client open | RSS MB | heap after GC MB | heap total MB | external MB | fds | server CPU % |',
    '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
  ];
  for (const s of samples) {
    rows.push(
      `| ${s.phase} | ${s.t_s} | ${s.connections} | ${s.client_open} | ${s.rss_mb} | ${s.heap_used_mb} | ${s.heap_total_mb} | ${s.external_mb} | ${s.fds} | ${s.server_cpu_percent} |`,
    );
  }
  return rows.join('\n');
}

// ------------------------------------------------------------------ main

async function main(): Promise<boolean> {
  // One fd per connection here and in the server, plus churn; or pass --connections.
  requireOpenFiles(CONNECTIONS + 1000, `${CONNECTIONS} connections`);
  pinLoadToCore0();
  tokenTtlS = Math.ceil(RUN_MS / 1000) + 3600;
  probePort = await freePort();
  const probe = `${ROOT}build/bench/soak-probe.js`;
  server = await startDemoServer(
    {
      SOAK_PROBE_PORT: String(probePort),
      REALTIME_MAX_TOTAL_CONNECTIONS: String(CONNECTIONS * 2 + 100),
      REALTIME_MAX_CONNECTIONS_PER_USER: '4',
      REALTIME_RATE_LIMIT_MESSAGES: '1000000',
    },
    ['--expose-gc', '--import', probe],
  );
  console.log(
    `soak: ${CONNECTIONS} connections (${USERS} users), ${MINUTES} min; churn ${CHURN_SHARE * 100}% every ${TICK_MS / 1000} s; ` +
      (pinned ? 'server on core 1, clients on core 0' : 'not pinned (no taskset or 1 core)'),
  );
  const samples: Sample[] = [];
  const record = async (phase: Sample['phase']) => {
    const s = await sample(phase);
    samples.push(s);
    console.log(
      `${phase} t=${s.t_s}s connections=${s.connections} rss=${s.rss_mb}MB heap=${s.heap_used_mb}MB fds=${s.fds} cpu=${s.server_cpu_percent}%`,
    );
    return s;
  };
  try {
    await sleep(2000); // let start-up settle
    const idle = await record('idle');
    await connectAll();
    await settle(CONNECTIONS);
    runStart = Date.now();
    const start = await record('run');
    // Churn at 5 s past each sample, so that samples do not land on reconnects in flight.
    const runEnd = runStart + RUN_MS;
    const traffic = adminTraffic(runEnd);
    let slot = 0;
    const pinger = setInterval(() => pingSlot(slot++ % PING_SLOTS), TICK_MS / PING_SLOTS);
    const churns: Array<Promise<unknown>> = [];
    try {
      for (let tick = 1; tick <= RUN_MS / TICK_MS; tick++) {
        await sleep(Math.max(0, runStart + tick * TICK_MS - TICK_MS / 2 - Date.now()));
        churns.push(churn());
        await sleep(Math.max(0, runStart + tick * TICK_MS - Date.now()));
        await record('run');
      }
    } finally {
      clearInterval(pinger);
      await traffic;
    }
    // Quiet end: every connection back, every ping answered or expired, then the same count.
    await Promise.all(churns);
    await Promise.all([...down].map(reopen));
    await settle(CONNECTIONS);
    for (let waited = 0; pending.size > 0 && waited <= PING_TIMEOUT_MS; waited += 100) {
      await sleep(100);
      expirePings(PING_TIMEOUT_MS);
    }
    expirePings(0);
    const end = await record('end');
    stopping = true;
    for (const client of clients) client.socket?.close(1000, 'soak over');
    await settle(0);
    await sleep(1000);
    const closed = await record('closed');
    if (LINGER_S) {
      await sleep(LINGER_S * 1000);
      await record('later');
    }

    const secondHalf = samples.filter((s) => s.phase === 'run' && s.t_s >= RUN_MS / 2000);
    const heapSlope = slopePerMinute(secondHalf, 'heap_used_mb');
    const rssSlope = slopePerMinute(secondHalf, 'rss_mb');
    const heapTotalSlope = slopePerMinute(secondHalf, 'heap_total_mb');
    const fdLeakWhileOpen = end.fds - end.connections - (start.fds - start.connections);
    const fdLeakAfterClose = closed.fds - idle.fds;
    const checks = {
      heap_slope: heapSlope <= HEAP_SLOPE_BOUND_MB_PER_MIN,
      fds_while_open: fdLeakWhileOpen <= FD_TOLERANCE,
      fds_after_close: fdLeakAfterClose <= FD_TOLERANCE,
      pings: counts.pings_failed <= Math.max(1, counts.pings_sent * FAILURE_SHARE),
      unexpected_closes: counts.unexpected_closes <= Math.max(1, CONNECTIONS * FAILURE_SHARE),
    };
    const passed = Object.values(checks).every(Boolean);
    const adminReceived =
      (receivedByType['soak.broadcast'] ?? 0) + (receivedByType['soak.targeted'] ?? 0);
    const result = {
      slopes_mb_per_min: {
        heap: heapSlope,
        rss: rssSlope,
        heap_total: heapTotalSlope,
        over: `${secondHalf.length} samples from t=${secondHalf[0]?.t_s}s`,
      },
      fds: {
        idle: idle.fds,
        start: start.fds,
        end: end.fds,
        after_close: closed.fds,
        connections_start: start.connections,
        connections_end: end.connections,
        leak_while_open: fdLeakWhileOpen,
        leak_after_close: fdLeakAfterClose,
      },
      ping_rtt_ms: { p50: percentile(0.5), p99: percentile(0.99), max: percentile(1) },
      admin_post_ms: { median: round(median(postMs), 1), max: round(Math.max(0, ...postMs), 1) },
      counts,
      received_by_type: receivedByType,
      unexpected_close_codes: closeCodes,
      checks,
      passed,
    };
    console.log(`\n${table(samples)}\n`);
    console.log(
      [
        `heap slope ${heapSlope} MB/min (bound ${HEAP_SLOPE_BOUND_MB_PER_MIN}), RSS slope ${rssSlope} MB/min, heap total slope ${heapTotalSlope} MB/min, over ${result.slopes_mb_per_min.over}`,
        `fds: idle ${idle.fds}, start ${start.fds} (${start.connections} connections), end ${end.fds} (${end.connections}), after close ${closed.fds}; ` +
          `leak while open ${fdLeakWhileOpen}, after close ${fdLeakAfterClose} (tolerance ${FD_TOLERANCE})`,
        `pings: sent ${counts.pings_sent}, answered ${counts.pings_answered}, failed ${counts.pings_failed}, abandoned by churn ${counts.pings_abandoned}; ` +
          `RTT p50 ${result.ping_rtt_ms.p50} ms, p99 ${result.ping_rtt_ms.p99} ms`,
        `heap after GC: idle ${idle.heap_used_mb} MB, after close ${closed.heap_used_mb} MB (the 2-minute message history and rate-limit windows still hold some; a leak would grow with the run)`,
        `messages received ${counts.messages_received} (of admin sends ${adminReceived}); admin sends ${counts.broadcasts_sent} broadcasts + ${counts.targeted_sends} targeted, reaching ${counts.connections_reached}; admin failures ${counts.admin_failures}; ` +
          `POST median ${result.admin_post_ms.median} ms, max ${result.admin_post_ms.max} ms`,
        `churn: ${counts.churn_closed} closed + ${counts.churn_terminated} terminated; connects ${counts.connects}, connect failures ${counts.connect_failures}; ` +
          `unexpected closes ${counts.unexpected_closes} ${JSON.stringify(closeCodes)}`,
        `checks: ${JSON.stringify(checks)} -> ${passed ? 'PASS' : 'FAIL'}`,
      ].join('\n'),
    );
    const machine = { cores: CORES, cpu: cpus()[0]?.model, node: process.version, pinned };
    const options = { connections: CONNECTIONS, minutes: MINUTES, quick, users: USERS };
    const bounds = {
      heap_slope_mb_per_min: HEAP_SLOPE_BOUND_MB_PER_MIN,
      fd_tolerance: FD_TOLERANCE,
      failure_share: FAILURE_SHARE,
    };
    const date = new Date().toISOString();
    const json = { date, machine, options, bounds, ...result, samples };
    const file = writeResults('soak', date, json);
    console.log(`written ${file}`);
    return passed;
  } finally {
    stopping = true;
    for (const client of clients) client.socket?.terminate();
    await stopChild(server.child);
  }
}

runGuarded(main, RUN_MS + LINGER_S * 1000 + 5 * 60_000);
