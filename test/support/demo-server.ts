import { DemoTokens } from '../../src/demo/demo.tokens.js';
import { type DemoApp, startDemo } from './browser.js';

export const DEMO_TEST_SECRET = 'demo-server-test-secret-0123456789abcdef';

/** The demo app as a test server: its URLs, tokens of its secret, and a close. */
export interface DemoServer extends DemoApp {
  port: number;
  /** A token for `userId` (not admin), valid for `ttlSeconds`. */
  token(userId: string, ttlSeconds?: number): string;
  close(): Promise<void>;
}

/**
 * Boots the demo app (`npm start`'s app) on 127.0.0.1; `env` as the demo reads it, e.g.
 * `{ PORT: '4123' }` to start again on the port of a server that was closed.
 */
export async function startDemoServer(
  env: Record<string, string> = {},
  secret = DEMO_TEST_SECRET,
): Promise<DemoServer> {
  const demo = await startDemo(secret, env);
  const tokens = new DemoTokens(secret);
  let closed = false;
  return {
    ...demo,
    port: Number(new URL(demo.url).port),
    token: (userId, ttlSeconds = 600) => tokens.sign(userId, false, ttlSeconds),
    async close() {
      if (closed) return;
      closed = true;
      await demo.app.close();
    },
  };
}
