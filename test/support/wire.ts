import assert from 'node:assert/strict';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { TestApp } from './test-app.js';
import { eventually, type ReceivedMessage, TestClient } from './test-client.js';

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** Asserts the server envelope of PROTOCOL.md section 3 on one received message. */
export function assertServerEnvelope(message: ReceivedMessage): void {
  assert.equal(typeof message.type, 'string', 'type is a string');
  assert.ok(message.type.length > 0, 'type is not empty');
  assert.ok(
    typeof message.data === 'object' && message.data !== null && !Array.isArray(message.data),
    `data of ${message.type} is an object`,
  );
  assert.match(message.timestamp, ISO_UTC, `timestamp of ${message.type} is ISO-8601 UTC`);
  assert.ok(!Number.isNaN(Date.parse(message.timestamp)), 'timestamp parses');
  assert.match(message.id, UUID_V4, `id of ${message.type} is a UUID v4`);
}

/** Asserts that the client never got a frame that is not an envelope, and checks every one. */
export function assertAllEnvelopes(client: TestClient): void {
  assert.deepEqual(client.malformed, [], 'no malformed server frames');
  for (const message of client.received) assertServerEnvelope(message);
}

/** Sends a ping and expects its pong: the connection is open and usable. */
export async function assertPingWorks(client: TestClient, pingId = 'alive'): Promise<void> {
  const reply = await client.request({ type: 'ping', data: { pingId } });
  assert.equal(reply.type, 'pong');
  assert.equal(reply.data.pingId, pingId);
}

/** A fresh client is admitted and answered: the server still serves after what a test did. */
export async function assertServesFreshClient(
  server: Pick<TestApp, 'wsUrl' | 'token'>,
  user: string,
): Promise<void> {
  const fresh = await TestClient.open(server.wsUrl, server.token(user));
  try {
    await assertPingWorks(fresh);
  } finally {
    fresh.close();
  }
}

/** A bounded sleep. */
export function sleep(ms: number): Promise<void> {
  return sleepFor(ms, undefined, { ref: true });
}

/** JSON text of `{ type, data }` with `depth` levels of object/array nesting in total. */
export function nestedMessage(type: string, depth: number): string {
  // The envelope is level 1 and `data` level 2; the rest nests arrays inside data.a.
  const inner = depth - 2;
  return `{"type":"${type}","data":{"a":${'['.repeat(inner)}${']'.repeat(inner)}}}`;
}

/** Something that can send to a user, such as RealtimeService. */
interface UserSender {
  sendToUser(userId: string, type: string, data: Record<string, unknown>): Promise<number>;
}

/**
 * Every message `client` received up to a marker sent now to `userId` (markers left out). The
 * server writes a connection's frames in order, so anything sent to it before the call is in the
 * list: a bounded way to show that something never arrived.
 */
export async function receivedUpToMarker(
  service: UserSender,
  client: TestClient,
  userId: string,
): Promise<ReceivedMessage[]> {
  const marker = `test.marker.${Math.random().toString(36).slice(2)}`;
  await service.sendToUser(userId, marker, {});
  await eventually(() => client.received.some((m) => m.type === marker), 3000, marker);
  const index = client.received.findIndex((m) => m.type === marker);
  return client.received.slice(0, index).filter((m) => !m.type.startsWith('test.marker.'));
}

/** Asserts that `client` never received a message of `type` (matching `where`, when given). */
export async function assertNotReceived(
  service: UserSender,
  client: TestClient,
  userId: string,
  type: string,
  where: (data: any) => boolean = () => true,
): Promise<void> {
  const seen = await receivedUpToMarker(service, client, userId);
  const unexpected = seen.filter((m) => m.type === type && where(m.data));
  assert.deepEqual(unexpected, [], `${userId} must not receive ${type}`);
}
