import type { RedisBus } from '../../src/realtime/index.js';
import { eventually } from './test-client.js';

/** Waits (bounded) until every bus is connected and lists exactly these buses as live. */
export async function waitForPeers(buses: readonly RedisBus[], timeoutMs = 10_000): Promise<void> {
  const ids = JSON.stringify(buses.map((bus) => bus.instanceId).sort());
  await eventually(
    () =>
      buses.every(
        (bus) => bus.isConnected() && JSON.stringify([...bus.liveInstances()].sort()) === ids,
      ),
    timeoutMs,
    `${buses.length} RedisBus instances connected and listing each other`,
  );
}
