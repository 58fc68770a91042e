/** Target `module`: the demo app with this module, booted as src/demo/main.ts does. */
import 'reflect-metadata';
import { createDemoApp } from '../../src/demo/bootstrap.js';
import { loadDemoConfig } from '../../src/demo/demo-config.js';
import { startProbe } from './probe.js';
import { targetEnv } from './target-env.js';

const { port, probePort } = targetEnv();
const app = await createDemoApp(loadDemoConfig());
await app.listen(port, '127.0.0.1');
await startProbe(probePort);
