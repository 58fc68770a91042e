import { createServer } from 'node:http';

/**
 * The memory side-channel: GET /memory collects garbage and answers process.memoryUsage().
 * A server of its own, so that probing never goes through the target's HTTP stack.
 */
export function startProbe(port: number): Promise<void> {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('start the target with --expose-gc');
  const server = createServer((request, response) => {
    if (request.url !== '/memory') return void response.writeHead(404).end();
    // Twice: the first pass can leave objects that only the second finds unreachable.
    collect();
    collect();
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(process.memoryUsage()));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}
