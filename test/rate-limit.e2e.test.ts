import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, type ReceivedMessage, TestClient } from './support/test-client.js';
import { assertAllEnvelopes, assertPingWorks, sleep } from './support/wire.js';

const LIMIT = 5;
const WINDOW_MS = 2000;

/** Sends pings with ids `<prefix>-1..n` at once and returns the reply to each, in order. */
async function burst(client: TestClient, prefix: string, n: number): Promise<ReceivedMessage[]> {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
  for (const id of ids) client.send({ type: 'ping', data: { pingId: id }, id });
  await eventually(
    () => ids.every((id) => client.received.some((m) => m.in_reply_to === id)),
    3000,
    `replies to ${prefix}`,
  );
  return ids.map((id) => client.received.find((m) => m.in_reply_to === id)!);
}

function assertRateLimited(reply: ReceivedMessage): void {
  assert.equal(reply.type, 'error');
  assert.equal(reply.data.code, 'RATE_LIMIT_EXCEEDED');
  assert.equal(typeof reply.data.message, 'string');
  assert.ok(Number.isInteger(reply.data.reset_time), 'reset_time is whole unix seconds');
}

/** Waits until the wall clock reaches `resetTime` (unix seconds), bounded by the window. */
async function waitUntilReset(resetTime: number): Promise<void> {
  const wait = resetTime * 1000 - Date.now();
  assert.ok(wait <= WINDOW_MS + 1000, `reset_time is within a window (${wait} ms away)`);
  if (wait > 0) await sleep(wait + 20);
}

describe('per-user rate limit', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({
      realtime: { rateLimitMessages: LIMIT, rateLimitWindowMs: WINDOW_MS },
    });
  });
  after(() => server.close());

  function nextUser(): string {
    return `rate-${++users}`;
  }

  it('announces the limit in connection.established', async () => {
    const client = await TestClient.open(server.wsUrl, server.token(nextUser()));
    const { limits } = client.received[0]!.data;
    assert.equal(limits.rate_limit_messages, LIMIT);
    assert.equal(limits.rate_limit_window, WINDOW_MS / 1000);
    client.close();
  });

  it('lets exactly the limit through, then answers RATE_LIMIT_EXCEEDED with reset_time', async () => {
    const client = await TestClient.open(server.wsUrl, server.token(nextUser()));
    const started = Date.now();
    const replies = await burst(client, 'p', LIMIT + 1);
    const answered = Date.now();
    for (const reply of replies.slice(0, LIMIT)) assert.equal(reply.type, 'pong');
    const limited = replies[LIMIT]!;
    assertRateLimited(limited);
    const resetTime = limited.data.reset_time as number;
    assert.ok(resetTime * 1000 > answered, 'reset_time is in the future');
    assert.ok(
      resetTime <= Math.ceil((answered + WINDOW_MS) / 1000),
      `reset_time ${resetTime} is at most one window away`,
    );
    assert.ok(
      resetTime * 1000 >= started + WINDOW_MS - 1000,
      'reset_time is not before the first message leaves the window',
    );
    assert.equal(client.closeInfo, undefined, 'the connection stays open');
    assertAllEnvelopes(client);
    client.close();
  });

  it('counts invalid messages too', async () => {
    const client = await TestClient.open(server.wsUrl, server.token(nextUser()));
    client.send('not json');
    client.send({ type: 'no.such.type' });
    client.socket.send(Buffer.from('{}'), { binary: true });
    await eventually(() => client.ofType('error').length === 3, 3000, 'three errors');
    const replies = await burst(client, 'after-invalid', 3);
    assert.equal(replies[0]!.type, 'pong');
    assert.equal(replies[1]!.type, 'pong');
    assertRateLimited(replies[2]!);
    client.close();
  });

  it('counts per user across connections, and leaves other users alone', async () => {
    const userId = nextUser();
    const first = await TestClient.open(server.wsUrl, server.token(userId));
    const second = await TestClient.open(server.wsUrl, server.token(userId));
    const other = await TestClient.open(server.wsUrl, server.token(nextUser()));
    const a = await burst(first, 'a', 3);
    const b = await burst(second, 'b', 2);
    for (const reply of [...a, ...b]) assert.equal(reply.type, 'pong');
    assertRateLimited((await burst(second, 'b-more', 1))[0]!);
    assertRateLimited((await burst(first, 'a-more', 1))[0]!);
    const others = await burst(other, 'o', LIMIT);
    for (const reply of others) assert.equal(reply.type, 'pong');
    assert.equal(first.closeInfo, undefined);
    assert.equal(second.closeInfo, undefined);
    for (const client of [first, second, other]) client.close();
  });

  it('closes with 1008 "Policy violation" past twice the limit in a window', async () => {
    const client = await TestClient.open(server.wsUrl, server.token(nextUser()));
    const bystander = await TestClient.open(server.wsUrl, server.token(nextUser()));
    const ids = Array.from({ length: 2 * LIMIT + 1 }, (_, i) => `flood-${i + 1}`);
    for (const id of ids) client.send({ type: 'ping', data: {}, id });
    const closed = await client.waitClose();
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'Policy violation');
    assert.equal(client.ofType('pong').length, LIMIT);
    const limited = client.ofType('error');
    assert.equal(limited.length, LIMIT);
    for (const error of limited) assertRateLimited(error);
    await assertPingWorks(bystander);
    client.close();
    bystander.close();
  });

  it('accepts messages again once reset_time has passed', async () => {
    const client = await TestClient.open(server.wsUrl, server.token(nextUser()));
    const replies = await burst(client, 'w', LIMIT + 1);
    const limited = replies[LIMIT]!;
    assertRateLimited(limited);
    await waitUntilReset(limited.data.reset_time);
    const again = await burst(client, 'w-again', LIMIT);
    for (const reply of again) assert.equal(reply.type, 'pong');
    client.close();
  });

  it('tells the truth in reset_time when the messages were spread over the window', async () => {
    const client = await TestClient.open(server.wsUrl, server.token(nextUser()));
    assert.equal((await burst(client, 'early', 1))[0]!.type, 'pong');
    await sleep(WINDOW_MS / 2 + 200);
    const replies = await burst(client, 'late', LIMIT);
    for (const reply of replies.slice(0, LIMIT - 1)) assert.equal(reply.type, 'pong');
    const limited = replies[LIMIT - 1]!;
    assertRateLimited(limited);
    // A client that waits until reset_time, as told, is let in.
    await waitUntilReset(limited.data.reset_time);
    assert.equal((await burst(client, 'on-time', 1))[0]!.type, 'pong');
    client.close();
  });

  it('answers a limited message in reply to its id', async () => {
    const client = await TestClient.open(server.wsUrl, server.token(nextUser()));
    const replies = await burst(client, 'r', LIMIT + 1);
    assert.equal(replies[LIMIT]!.in_reply_to, `r-${LIMIT + 1}`);
    assertRateLimited(replies[LIMIT]!);
    client.close();
  });
});
