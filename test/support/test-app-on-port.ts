import { type StartOptions, startTestApp, type TestApp } from './test-app.js';

/**
 * Boots the app like `startTestApp`, but on a chosen port (0 for a free one), so that a test can
 * stop a server and start a new one where its clients reconnect. Always on 127.0.0.1.
 */
export function startTestAppOnPort(port: number, options: StartOptions = {}): Promise<TestApp> {
  return startTestApp({ ...options, port });
}
