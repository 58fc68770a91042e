/**
 * Target `module`: the demo app with this module, booted as src/demo/main.ts does (JWT auth on
 * every connection). Its sends are triggered like every other target's: a bare POST /ws/broadcast
 * route that calls the target's own send API, here `RealtimeService` as a host provider does;
 * the admin API's HTTP stack (Express, Nest pipeline, JWT, DTO validation) is not what W1
 * compares. Every other route goes to the app.
 */
import 'reflect-metadata';
import type { Server } from 'node:http';
import { createDemoApp } from '../../src/demo/bootstrap.js';
import { loadDemoConfig } from '../../src/demo/demo-config.js';
import { RealtimeService } from '../../src/realtime/index.js';
import { applyCoalescingMode } from './coalescing-mode.js';
import { keepTriggerConnectionsAlive } from './keep-alive.js';
import { startProbe } from './probe.js';
import { targetEnv } from './target-env.js';
import { type Broadcast, routeBroadcastFirst } from './trigger.js';

const { port, probePort } = targetEnv();
applyCoalescingMode(process.env.BENCH_COALESCE);
const app = await createDemoApp(loadDemoConfig());
const realtime = app.get(RealtimeService);
const server = app.getHttpServer() as Server;
keepTriggerConnectionsAlive(server);

/** The same targets as the admin API's broadcast: the type is the request's, for every target. */
function send({ type, data, target }: Broadcast): Promise<number> {
  if (target?.event) return realtime.publish(type, data, { kind: 'event', event: target.event });
  if (target?.users) return realtime.publish(type, data, { kind: 'users', userIds: target.users });
  return realtime.publish(type, data, { kind: 'all' });
}

routeBroadcastFirst(server, send);
await app.listen(port, '127.0.0.1');
await startProbe(probePort);
