import assert from 'node:assert/strict';
import type { ClusterInstance } from './cluster.js';
import { eventually, type ReceivedMessage, TestClient } from './test-client.js';
import { UUID_V4 } from './wire.js';

/** Bound on a message crossing the cluster. */
export const CROSS_WAIT_MS = 5_000;

/** A ws client of the cluster, with where it is connected. */
export interface ClusterClient {
  client: TestClient;
  userId: string;
  instance: ClusterInstance;
  connectionId: string;
  /** `userId@instance`, for assertion messages. */
  label: string;
}

/** Opens a real ws connection for `userId` on `instance`. */
export async function openOn(instance: ClusterInstance, userId: string): Promise<ClusterClient> {
  const client = await TestClient.open(instance.wsUrl, instance.token(userId));
  const established = client.received[0]!;
  assert.equal(established.type, 'connection.established');
  return {
    client,
    userId,
    instance,
    connectionId: String(established.data.connection_id),
    label: `${userId}@${instance.index}`,
  };
}

let markers = 0;

/**
 * Broadcasts a marker from `sender` and waits (bounded) until every client in `clients` got it.
 * Messages from one sender keep their order, so whatever `sender` sent before is in each
 * client's list by then: a bounded way to show that something arrived once, or never.
 * Resolves to, per client, what it received before the marker (markers left out).
 */
export async function settleVia(
  sender: ClusterInstance,
  clients: readonly ClusterClient[],
): Promise<Map<ClusterClient, ReceivedMessage[]>> {
  const marker = `test.marker.${++markers}.${Math.random().toString(36).slice(2)}`;
  await sender.service.broadcast(marker, {});
  for (const c of clients) {
    await eventually(
      () => c.client.received.some((m) => m.type === marker),
      CROSS_WAIT_MS,
      `marker from instance ${sender.index} reaching ${c.label}`,
    );
  }
  const seen = new Map<ClusterClient, ReceivedMessage[]>();
  for (const c of clients) {
    const index = c.client.received.findIndex((m) => m.type === marker);
    seen.set(
      c,
      c.client.received.slice(0, index).filter((m) => !m.type.startsWith('test.marker.')),
    );
  }
  return seen;
}

/**
 * Asserts that exactly `recipients` (among `everyone`) got the message of `type` once each, all
 * with one shared UUID id (equal to `id` when given); nobody else got it. Returns the id.
 */
export async function assertReachedOnce(
  sender: ClusterInstance,
  type: string,
  recipients: readonly ClusterClient[],
  everyone: readonly ClusterClient[],
  id?: string,
): Promise<string> {
  const seen = await settleVia(sender, everyone);
  const ids = new Set<string>();
  for (const c of everyone) {
    const got = seen.get(c)!.filter((m) => m.type === type);
    const expected = recipients.includes(c) ? 1 : 0;
    assert.equal(got.length, expected, `${c.label} received ${type} ${expected} time(s)`);
    for (const m of got) ids.add(m.id);
  }
  assert.equal(ids.size, 1, `every recipient of ${type} saw one shared id: ${[...ids].join(', ')}`);
  const [shared] = [...ids] as [string];
  assert.match(shared, UUID_V4);
  if (id !== undefined) assert.equal(shared, id, 'the id is the one publishMessage returned');
  return shared;
}
