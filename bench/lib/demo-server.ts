import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BENCH_SECRET, jwt } from './jwt.js';
import { type Child, freePort, running, startChild, STEP_TIMEOUT_MS, until } from './processes.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // build/bench/lib/ -> repo root
export const DEMO = `${ROOT}dist/demo/main.js`;

export interface DemoServer extends Child {
  port: number;
}

/**
 * Starts `node [nodeArgs] dist/demo/main.js` (pinned like every server child) on a free port,
 * with the bench secret, JSON logs and `env` added; resolves once it serves its page.
 */
export async function startDemoServer(
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
): Promise<DemoServer> {
  if (!existsSync(DEMO)) throw new Error(`${DEMO} is missing: run npm run build first`);
  const port = await freePort();
  const full: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    JWT_SECRET: BENCH_SECRET,
    LOG_FORMAT: 'json',
    ...env,
  };
  if (!env.REDIS_URL) delete full.REDIS_URL;
  const server = { ...startChild(['node', ...nodeArgs, DEMO], full), port };
  await until(
    () => `demo on port ${port} serving; output: ${server.output()}`,
    async () => {
      if (!running(server.child)) {
        throw new Error(`demo on port ${port} exited: ${server.output()}`);
      }
      const page = fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
      return page.then((response) => response.ok).catch(() => false);
    },
  );
  return server;
}

/** One admin API call; the `data` of a 2xx answer, else throws with the status and body. */
export async function adminApi(
  port: number,
  path: string,
  admin: string,
  body?: object,
): Promise<any> {
  const response = await fetch(`http://127.0.0.1:${port}/ws/${path}`, {
    method: body ? 'POST' : 'GET',
    headers: {
      authorization: `Bearer ${jwt({ sub: admin, role: 'admin' })}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text).data;
}
