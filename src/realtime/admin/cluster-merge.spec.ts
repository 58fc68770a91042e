import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isInstancePage, isInstanceStats, mergePages, mergeStats } from './cluster-merge.js';
import type { ConnectionSummary, InstanceStats } from './realtime-stats.service.js';

function stats(overrides: Partial<InstanceStats>): InstanceStats {
  return {
    total_connections: 0,
    connections_per_user: {},
    subscriptions: {},
    rooms: {},
    messages_in: 0,
    messages_out: 0,
    bytes_in: 0,
    bytes_out: 0,
    ...overrides,
  };
}

function summary(id: string, at: string, user = 'u'): ConnectionSummary {
  return {
    connection_id: id,
    user_id: user,
    connected_at: at,
    last_activity: at,
    subscriptions: 0,
    rooms: 0,
    remote_address: '127.0.0.1',
  };
}

describe('mergeStats', () => {
  it('sums totals and counts by name, and counts a user on two instances once', () => {
    const merged = mergeStats([
      {
        instanceId: 'a',
        answer: stats({
          total_connections: 3,
          connections_per_user: { alice: 2, bob: 1 },
          subscriptions: { 'upload.progress': 2 },
          rooms: { team: 1 },
          messages_in: 4,
          messages_out: 7,
          bytes_in: 10,
          bytes_out: 20,
        }),
      },
      {
        instanceId: 'b',
        answer: stats({
          total_connections: 2,
          connections_per_user: { alice: 1, carol: 1 },
          subscriptions: { 'upload.progress': 1, 'file.ready': 1 },
          rooms: { team: 2 },
          messages_in: 1,
          messages_out: 2,
          bytes_in: 1,
          bytes_out: 2,
        }),
      },
    ]);
    assert.equal(merged.total_connections, 5);
    assert.equal(merged.unique_users, 3);
    assert.deepEqual(merged.connections_per_user, { alice: 3, bob: 1, carol: 1 });
    assert.equal(merged.average_connections_per_user, 1.67);
    assert.deepEqual(merged.subscriptions, { 'upload.progress': 3, 'file.ready': 1 });
    assert.deepEqual(merged.rooms, { team: 3 });
    assert.deepEqual(
      [merged.messages_in, merged.messages_out, merged.bytes_in, merged.bytes_out],
      [5, 9, 11, 22],
    );
    assert.deepEqual(merged.instances, [
      { instance_id: 'a', total_connections: 3, unique_users: 2, messages_in: 4, messages_out: 7 },
      { instance_id: 'b', total_connections: 2, unique_users: 2, messages_in: 1, messages_out: 2 },
    ]);
  });

  it('keeps a user id such as __proto__ as an ordinary name', () => {
    const perUser = JSON.parse('{"__proto__": 1}') as Record<string, number>;
    const answer = stats({ total_connections: 1, connections_per_user: perUser });
    const merged = mergeStats([{ instanceId: 'a', answer }]);
    assert.equal(merged.unique_users, 1);
    assert.equal(JSON.stringify(merged.connections_per_user), '{"__proto__":1}');
  });
});

describe('mergePages', () => {
  it('orders by connected_at then connection_id, tags instances and cuts the page', () => {
    const t1 = '2025-01-01T00:00:00.001Z';
    const t2 = '2025-01-01T00:00:00.002Z';
    const merged = mergePages(
      [
        {
          instanceId: 'a',
          answer: { total: 3, connections: [summary('c', t1), summary('d', t2)] },
        },
        { instanceId: 'b', answer: { total: 1, connections: [summary('b', t1)] } },
      ],
      1,
      2,
    );
    assert.equal(merged.total, 4);
    assert.deepEqual(
      merged.connections.map((c) => [c.connection_id, c.instance_id]),
      [
        ['c', 'a'],
        ['d', 'a'],
      ],
    );
  });
});

describe('answer shapes', () => {
  it('accepts what instances send and refuses anything else', () => {
    assert.equal(isInstanceStats(stats({})), true);
    assert.equal(isInstanceStats({ ...stats({}), total_connections: -1 }), false);
    assert.equal(isInstanceStats({ ...stats({}), rooms: { a: 'x' } }), false);
    assert.equal(isInstanceStats(null), false);
    assert.equal(
      isInstancePage({ total: 1, connections: [summary('a', '2025-01-01T00:00:00.000Z')] }),
      true,
    );
    assert.equal(isInstancePage({ total: 1, connections: [{ connection_id: 'a' }] }), false);
    assert.equal(isInstancePage({ total: 1.5, connections: [] }), false);
  });
});
