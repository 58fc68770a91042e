/**
 * Preloaded into the demo server by the soak test (`node --expose-gc --import <this> main.js`):
 * a side port on 127.0.0.1 (SOAK_PROBE_PORT) whose `GET /memory` runs a full GC and answers
 * `process.memoryUsage()` as JSON, so heap after GC is measured without touching src/.
 */
import { createServer } from 'node:http';

const port = Number(process.env.SOAK_PROBE_PORT);
if (!Number.isInteger(port) || port <= 0) throw new Error('soak-probe: SOAK_PROBE_PORT not set');
if (typeof globalThis.gc !== 'function') throw new Error('soak-probe: start node with --expose-gc');
const gc = globalThis.gc;

const probe = createServer((request, response) => {
  if (request.url !== '/memory') {
    response.writeHead(404).end();
    return;
  }
  gc();
  response.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
  response.end(JSON.stringify(process.memoryUsage()));
});
probe.listen(port, '127.0.0.1');
probe.unref(); // the server's own shutdown decides when the process ends
