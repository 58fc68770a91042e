import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';
import { killOnExit } from './redis-server.js';
import { TEST_SECRET } from './test-app.js';
import { eventually } from './test-client.js';

/** The demo app of this build (`npm start`'s), run as its own process. */
const DEMO_MAIN = fileURLToPath(new URL('../../src/demo/main.js', import.meta.url));

/** A demo process: for the faults only a process of its own allows (SIGKILL, SIGSTOP). */
export interface DemoProcess {
  child: ChildProcess;
  port: number;
  /** The last 8 KB of its stdout and stderr, for failure messages. */
  output(): string;
  /** Resolves once it answers HTTP on its port; fails with its output after `timeoutMs`. */
  serving(timeoutMs?: number): Promise<void>;
  /** SIGKILL unless it has exited (it ends a stopped process too). */
  kill(): void;
}

/** Starts the demo on a free port with the test secret, `env` added (REDIS_URL, lease, …). */
export async function spawnDemoProcess(env: Record<string, string>): Promise<DemoProcess> {
  assert.ok(existsSync(DEMO_MAIN), `${DEMO_MAIN} exists (npm run build:test)`);
  const port = await freePort();
  const child = spawn(process.execPath, [DEMO_MAIN], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      JWT_SECRET: TEST_SECRET,
      NODE_ENV: 'test',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return {
    child,
    port,
    output: () => output,
    async serving(timeoutMs = 20_000) {
      try {
        await eventually(
          () =>
            fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) }).then(
              (response) => response.ok,
              () => false,
            ),
          timeoutMs,
          'the demo answering HTTP on its port',
        );
      } catch (error) {
        assert.fail(`${String(error)}; demo output:\n${output}`);
      }
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
