/** Target `module`: the demo app with this module, booted as src/demo/main.ts does. */
import 'reflect-metadata';
import type { Server } from 'node:http';
import { createDemoApp } from '../../src/demo/bootstrap.js';
import { loadDemoConfig } from '../../src/demo/demo-config.js';
import { keepTriggerConnectionsAlive } from './keep-alive.js';
import { startProbe } from './probe.js';
import { targetEnv } from './target-env.js';

const { port, probePort } = targetEnv();
const app = await createDemoApp(loadDemoConfig());
keepTriggerConnectionsAlive(app.getHttpServer() as Server);
await app.listen(port, '127.0.0.1');
await startProbe(probePort);
