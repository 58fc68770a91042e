import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { RealtimeConnection } from './realtime-connection.js';
import { TokenExpirySchedule } from './token-expiry-schedule.js';

const SOCKET = {} as WebSocket;
// A fixed clock far from zero, not aligned on a bucket boundary.
const NOW = 1_700_000_000_123;

function connection(id: string, expiresAt: number | undefined): RealtimeConnection {
  return new RealtimeConnection(
    id,
    SOCKET,
    { userId: `user-${id}`, isAdmin: false, expiresAt, claims: {} },
    { remoteAddress: '127.0.0.1' },
    NOW - 60_000,
  );
}

function ids(connections: RealtimeConnection[]): string[] {
  return connections.map((c) => c.id).sort();
}

describe('TokenExpirySchedule', () => {
  let schedule: TokenExpirySchedule;
  beforeEach(() => {
    schedule = new TokenExpirySchedule();
  });

  it('returns only the connections whose token has expired by now', () => {
    schedule.add(connection('past', NOW - 5_000));
    schedule.add(connection('just', NOW - 1));
    schedule.add(connection('exact', NOW));
    schedule.add(connection('soon', NOW + 1));
    schedule.add(connection('later', NOW + 10_000));
    assert.deepEqual(ids(schedule.takeExpired(NOW)), ['exact', 'just', 'past']);
  });

  it('takes a connection once: later calls do not return it again', () => {
    schedule.add(connection('a', NOW - 1));
    assert.deepEqual(ids(schedule.takeExpired(NOW)), ['a']);
    assert.deepEqual(schedule.takeExpired(NOW), []);
    assert.deepEqual(schedule.takeExpired(NOW + 60_000), []);
  });

  it('keeps a not-yet-due connection that shares a bucket with a due one', () => {
    const bucket = TokenExpirySchedule.TICK_MS;
    const start = Math.floor(NOW / bucket) * bucket;
    schedule.add(connection('early', start));
    schedule.add(connection('late', start + bucket - 1));
    assert.deepEqual(ids(schedule.takeExpired(start)), ['early']);
    assert.deepEqual(schedule.takeExpired(start + bucket - 2), []);
    assert.deepEqual(ids(schedule.takeExpired(start + bucket - 1)), ['late']);
  });

  it('returns connections as their time comes, across many buckets', () => {
    for (let i = 0; i < 20; i++) schedule.add(connection(`c${i}`, NOW + i * 100));
    const taken: string[] = [];
    for (let t = NOW; t <= NOW + 2_000; t += TokenExpirySchedule.TICK_MS) {
      for (const c of schedule.takeExpired(t)) {
        assert.ok(c.principal.expiresAt! <= t, `${c.id} taken before it expired`);
        taken.push(c.id);
      }
    }
    assert.equal(taken.length, 20);
    assert.equal(new Set(taken).size, 20);
  });

  it('does not return a removed connection', () => {
    const kept = connection('kept', NOW - 10);
    const removed = connection('removed', NOW - 10);
    schedule.add(kept);
    schedule.add(removed);
    schedule.remove(removed);
    assert.deepEqual(ids(schedule.takeExpired(NOW)), ['kept']);
  });

  it('ignores removing a connection never added, or removed twice', () => {
    const c = connection('c', NOW - 10);
    schedule.remove(c);
    schedule.add(c);
    schedule.remove(c);
    schedule.remove(c);
    assert.deepEqual(schedule.takeExpired(NOW), []);
  });

  it('ignores connections whose token has no exp', () => {
    const noExp = connection('no-exp', undefined);
    schedule.add(noExp);
    assert.deepEqual(schedule.takeExpired(Number.MAX_SAFE_INTEGER), []);
    schedule.remove(noExp);
    schedule.add(connection('exp', NOW - 1));
    assert.deepEqual(ids(schedule.takeExpired(NOW)), ['exp']);
  });

  it('returns nothing when empty', () => {
    assert.deepEqual(schedule.takeExpired(NOW), []);
  });

  it('counts what it holds, and holds nothing once every connection is taken or removed', () => {
    const list = Array.from({ length: 50 }, (_, i) => connection(`c${i}`, NOW + i * 1_000));
    for (const c of list) schedule.add(c);
    schedule.add(list[0]!);
    assert.equal(schedule.size, 50);
    assert.equal(schedule.bucketCount, 50);
    for (const c of list.slice(0, 25)) schedule.remove(c);
    assert.equal(ids(schedule.takeExpired(NOW + 60_000)).length, 25);
    assert.equal(schedule.size, 0);
    assert.equal(schedule.bucketCount, 0);
  });

  it('finds connections added behind the last call, and none early when the wall clock goes back', () => {
    assert.deepEqual(schedule.takeExpired(NOW), []);
    // Added after a call at NOW, already due (expired within the clock tolerance, say).
    schedule.add(connection('behind', NOW - 5_000));
    // The clock went back an hour: nothing is due yet, not even what is due at NOW.
    schedule.add(connection('soon', NOW - 3_600_000 + 1_000));
    assert.deepEqual(ids(schedule.takeExpired(NOW - 3_600_000)), []);
    assert.deepEqual(ids(schedule.takeExpired(NOW - 3_600_000 + 1_000)), ['soon']);
    assert.deepEqual(ids(schedule.takeExpired(NOW)), ['behind']);
    // And forward by a day: a call covers the whole jump.
    schedule.add(connection('tomorrow', NOW + 86_400_000 - 1));
    assert.deepEqual(ids(schedule.takeExpired(NOW + 86_400_000)), ['tomorrow']);
    assert.equal(schedule.size, 0);
  });

  it('keeps tokens that expire in year 9999 or at 1e15 s, and never takes one that expires at Infinity', () => {
    schedule.add(connection('y9999', 253_402_300_799_000));
    schedule.add(connection('e15', 1e18));
    const never = connection('never', Number.POSITIVE_INFINITY);
    schedule.add(never);
    assert.deepEqual(schedule.takeExpired(NOW), []);
    assert.equal(schedule.size, 2);
    assert.deepEqual(ids(schedule.takeExpired(Number.MAX_VALUE)), ['e15', 'y9999']);
    schedule.remove(never);
    assert.equal(schedule.size, 0);
    assert.equal(schedule.bucketCount, 0);
  });

  it('costs what is due, not what is scheduled: 2,000 ticks over 50,000 later buckets', () => {
    // Tokens of one-second `exp` values spread over most of a day, none due in the next minute.
    for (let i = 0; i < 50_000; i++) schedule.add(connection(`c${i}`, NOW + 60_000 + i * 1_000));
    schedule.takeExpired(NOW);
    const started = performance.now();
    for (let tick = 1; tick <= 2_000; tick++) schedule.takeExpired(NOW + tick * 25);
    const elapsed = performance.now() - started;
    // A scan of every bucket per call took about 1 ms each here (2 s in all); now microseconds.
    assert.ok(elapsed < 200, `2,000 calls took ${elapsed.toFixed(0)} ms`);
    assert.equal(schedule.size, 50_000);
  });
});
