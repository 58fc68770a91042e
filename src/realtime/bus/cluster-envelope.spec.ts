import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseClusterEnvelope } from './cluster-envelope.js';

function deliver(target: unknown): string {
  return JSON.stringify({
    kind: 'deliver',
    origin: 'other',
    message: { id: '1', type: 'x', frame: '{}', target },
  });
}

describe('parseClusterEnvelope: deliver targets', () => {
  it('accepts every kind of target with its fields', () => {
    for (const target of [
      { kind: 'connection', connectionId: 'c1' },
      { kind: 'users', userIds: ['a', 'b'] },
      { kind: 'users', userIds: [] },
      { kind: 'event', event: 'e' },
      { kind: 'room', room: 'r' },
      { kind: 'all' },
      { kind: 'all', exceptUserId: 'a' },
    ]) {
      assert.ok(parseClusterEnvelope(deliver(target)), JSON.stringify(target));
    }
  });

  it('drops a target of an unknown kind or without the fields of its kind', () => {
    for (const target of [
      { kind: 'bogus' },
      { kind: 'users' },
      { kind: 'users', userIds: 5 },
      { kind: 'users', userIds: ['a', 7] },
      { kind: 'connection' },
      { kind: 'event', event: null },
      { kind: 'room' },
      { kind: 'all', exceptUserId: 3 },
      [],
      'all',
    ]) {
      assert.equal(parseClusterEnvelope(deliver(target)), undefined, JSON.stringify(target));
    }
  });
});
