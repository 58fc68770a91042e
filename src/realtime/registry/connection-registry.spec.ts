import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { ConnectionRegistry, RoomFullError } from './connection-registry.js';
import { RealtimeConnection } from './realtime-connection.js';

// The registry never touches the socket.
const SOCKET = {} as WebSocket;

function connection(
  id: string,
  userId: string,
  { address = '10.0.0.1', connectedAt = 1_000 }: { address?: string; connectedAt?: number } = {},
): RealtimeConnection {
  return new RealtimeConnection(
    id,
    SOCKET,
    { userId, isAdmin: false, expiresAt: undefined, claims: { sub: userId } },
    { remoteAddress: address },
    connectedAt,
  );
}

function ids(connections: Iterable<RealtimeConnection>): string[] {
  return [...connections].map((c) => c.id).sort();
}

describe('ConnectionRegistry', () => {
  let registry: ConnectionRegistry;
  beforeEach(() => {
    registry = new ConnectionRegistry();
  });

  describe('add and remove', () => {
    it('indexes a connection by id, user and address', () => {
      const c = connection('c1', 'alice', { address: '10.0.0.7' });
      registry.add(c);
      assert.equal(registry.get('c1'), c);
      assert.deepEqual(ids(registry.all()), ['c1']);
      assert.deepEqual(ids(registry.ofUser('alice')), ['c1']);
      assert.equal(registry.countOfAddress('10.0.0.7'), 1);
      assert.equal(registry.size, 1);
      assert.equal(registry.userCount, 1);
      assert.deepEqual(registry.userIds(), ['alice']);
    });

    it('removes a connection from every index: id, user, event, room and address', () => {
      const c = connection('c1', 'alice', { address: '10.0.0.7' });
      registry.add(c);
      registry.subscribe(c, 'upload.progress');
      registry.subscribe(c, 'review.updated');
      registry.join(c, 'lobby', 10);
      registry.joinUser('alice', 'team', 10);

      assert.equal(registry.remove(c), true);
      assert.equal(registry.get('c1'), undefined);
      assert.deepEqual([...registry.all()], []);
      assert.equal(registry.ofUser('alice').size, 0);
      assert.equal(registry.subscribersOf('upload.progress').size, 0);
      assert.equal(registry.subscribersOf('review.updated').size, 0);
      assert.equal(registry.membersOf('lobby').size, 0);
      assert.equal(registry.membersOf('team').size, 0);
      assert.equal(registry.countOfAddress('10.0.0.7'), 0);
      assert.equal(registry.size, 0);
      assert.equal(registry.userCount, 0);
      assert.deepEqual(registry.userIds(), []);
      // Empty keys are dropped, so stats show nothing left behind.
      assert.deepEqual(registry.subscriptionCounts(), {});
      assert.deepEqual(registry.roomCounts(), {});
      assert.deepEqual(registry.connectionsPerUser(), {});
    });

    it('reads no address until a count per address is asked for, then counts every connection', () => {
      const reads: string[] = [];
      const at = (id: string, address: string) =>
        new RealtimeConnection(
          id,
          SOCKET,
          { userId: id, isAdmin: false, expiresAt: undefined, claims: { sub: id } },
          {
            get remoteAddress() {
              reads.push(id);
              return address;
            },
          },
          1_000,
        );
      const [a, b, c] = [at('a', '10.0.0.1'), at('b', '10.0.0.1'), at('c', '10.0.0.2')];
      registry.add(a);
      registry.add(b);
      registry.remove(b);
      registry.add(b);
      assert.deepEqual(reads, [], 'a connect without per-address limits makes no getpeername');

      assert.equal(registry.countOfAddress('10.0.0.1'), 2);
      registry.add(c);
      assert.equal(registry.countOfAddress('10.0.0.2'), 1);
      registry.remove(a);
      assert.equal(registry.countOfAddress('10.0.0.1'), 1);
      registry.remove(b);
      registry.remove(c);
      assert.equal(registry.countOfAddress('10.0.0.1'), 0);
      assert.equal(registry.countOfAddress('10.0.0.2'), 0);
    });

    it('keeps the other connections of the same user, event, room and address', () => {
      const a = connection('a', 'alice');
      const b = connection('b', 'alice');
      registry.add(a);
      registry.add(b);
      registry.subscribe(a, 'file.ready');
      registry.subscribe(b, 'file.ready');
      registry.join(a, 'r', 10);
      registry.join(b, 'r', 10);

      registry.remove(a);
      assert.deepEqual(ids(registry.ofUser('alice')), ['b']);
      assert.deepEqual(ids(registry.subscribersOf('file.ready')), ['b']);
      assert.deepEqual(ids(registry.membersOf('r')), ['b']);
      assert.equal(registry.countOfAddress('10.0.0.1'), 1);
    });

    it('returns false when removing twice', () => {
      const c = connection('c1', 'alice');
      registry.add(c);
      assert.equal(registry.remove(c), true);
      assert.equal(registry.remove(c), false);
      assert.equal(registry.size, 0);
    });

    it('returns false for a connection never added', () => {
      assert.equal(registry.remove(connection('ghost', 'nobody')), false);
    });

    it('does not remove a different connection object that reuses a registered id', () => {
      const registered = connection('same', 'alice');
      registry.add(registered);
      assert.equal(registry.remove(connection('same', 'alice')), false);
      assert.equal(registry.get('same'), registered);
      assert.deepEqual(ids(registry.ofUser('alice')), ['same']);
    });
  });

  describe('lookups', () => {
    it('ofUser returns only that user’s connections, empty for an unknown user', () => {
      registry.add(connection('a1', 'alice'));
      registry.add(connection('a2', 'alice'));
      registry.add(connection('b1', 'bob'));
      assert.deepEqual(ids(registry.ofUser('alice')), ['a1', 'a2']);
      assert.deepEqual(ids(registry.ofUser('bob')), ['b1']);
      assert.equal(registry.ofUser('carol').size, 0);
    });

    it('subscribersOf follows subscribe and unsubscribe', () => {
      const a = connection('a', 'alice');
      const b = connection('b', 'bob');
      registry.add(a);
      registry.add(b);
      registry.subscribe(a, 'upload.progress');
      registry.subscribe(b, 'upload.progress');
      registry.subscribe(b, 'file.ready');
      assert.deepEqual(ids(registry.subscribersOf('upload.progress')), ['a', 'b']);
      assert.deepEqual(ids(registry.subscribersOf('file.ready')), ['b']);
      assert.deepEqual([...b.subscriptions].sort(), ['file.ready', 'upload.progress']);

      assert.equal(registry.unsubscribe(a, 'upload.progress'), true);
      assert.equal(registry.unsubscribe(a, 'upload.progress'), false);
      assert.deepEqual(ids(registry.subscribersOf('upload.progress')), ['b']);
      assert.equal(a.subscriptions.size, 0);
      assert.equal(registry.subscribersOf('nothing').size, 0);
    });

    it('membersOf follows join and leave', () => {
      const a = connection('a', 'alice');
      const b = connection('b', 'bob');
      registry.add(a);
      registry.add(b);
      registry.join(a, 'r', 10);
      registry.join(b, 'r', 10);
      registry.join(a, 'r', 10); // joining twice changes nothing
      assert.deepEqual(ids(registry.membersOf('r')), ['a', 'b']);
      assert.deepEqual([...a.rooms], ['r']);

      assert.equal(registry.leave(a, 'r'), true);
      assert.equal(registry.leave(a, 'r'), false);
      assert.deepEqual(ids(registry.membersOf('r')), ['b']);
      assert.equal(a.rooms.size, 0);
    });

    it('counts connections per address', () => {
      registry.add(connection('a', 'alice', { address: '10.0.0.1' }));
      registry.add(connection('b', 'bob', { address: '10.0.0.1' }));
      registry.add(connection('c', 'carol', { address: '10.0.0.2' }));
      assert.equal(registry.countOfAddress('10.0.0.1'), 2);
      assert.equal(registry.countOfAddress('10.0.0.2'), 1);
      assert.equal(registry.countOfAddress('10.0.0.3'), 0);
    });
  });

  describe('oldestOf', () => {
    it('is the connection with the earliest connectedAt', () => {
      registry.add(connection('c', 'alice', { connectedAt: 300 }));
      registry.add(connection('a', 'alice', { connectedAt: 200 }));
      registry.add(connection('b', 'alice', { connectedAt: 100 }));
      registry.add(connection('z', 'bob', { connectedAt: 1 }));
      assert.equal(registry.oldestOf('alice')?.id, 'b');
    });

    it('breaks ties by id, whatever the insertion order', () => {
      registry.add(connection('m', 'alice', { connectedAt: 100 }));
      registry.add(connection('k', 'alice', { connectedAt: 100 }));
      registry.add(connection('x', 'alice', { connectedAt: 100 }));
      registry.add(connection('a', 'alice', { connectedAt: 500 }));
      assert.equal(registry.oldestOf('alice')?.id, 'k');
    });

    it('is undefined for a user with no connection', () => {
      assert.equal(registry.oldestOf('nobody'), undefined);
    });
  });

  describe('joinUser and leaveUser', () => {
    it('adds every current connection of the user and answers how many joined', () => {
      registry.add(connection('a1', 'alice'));
      registry.add(connection('a2', 'alice'));
      registry.add(connection('b1', 'bob'));
      assert.equal(registry.joinUser('alice', 'team', 10), 2);
      assert.deepEqual(ids(registry.membersOf('team')), ['a1', 'a2']);
      assert.equal(registry.joinUser('alice', 'team', 10), 0);
    });

    it('applies to later connections of the same user', () => {
      registry.add(connection('a1', 'alice'));
      registry.joinUser('alice', 'team', 10);
      const later = connection('a2', 'alice');
      registry.add(later);
      assert.deepEqual([...later.rooms], ['team']);
      assert.deepEqual(ids(registry.membersOf('team')), ['a1', 'a2']);
      const other = connection('b1', 'bob');
      registry.add(other);
      assert.equal(other.rooms.size, 0);
    });

    it('is forgotten when the user’s last connection goes', () => {
      const first = connection('a1', 'alice');
      const second = connection('a2', 'alice');
      registry.add(first);
      registry.add(second);
      registry.joinUser('alice', 'team', 10);
      registry.remove(first);
      // One connection is left: a new one still joins.
      const third = connection('a3', 'alice');
      registry.add(third);
      assert.deepEqual([...third.rooms], ['team']);
      registry.remove(second);
      registry.remove(third);
      // The user left entirely: the next session starts without the room.
      const fresh = connection('a4', 'alice');
      registry.add(fresh);
      assert.equal(fresh.rooms.size, 0);
      assert.equal(registry.membersOf('team').size, 0);
    });

    it('is not remembered for a user with no connection', () => {
      assert.equal(registry.joinUser('ghost', 'team', 10), 0);
      const later = connection('g1', 'ghost');
      registry.add(later);
      assert.equal(later.rooms.size, 0);
    });

    it('leaveUser removes current connections and stops later ones from joining', () => {
      registry.add(connection('a1', 'alice'));
      registry.add(connection('a2', 'alice'));
      registry.joinUser('alice', 'team', 10);
      assert.equal(registry.leaveUser('alice', 'team'), 2);
      assert.equal(registry.membersOf('team').size, 0);
      const later = connection('a3', 'alice');
      registry.add(later);
      assert.equal(later.rooms.size, 0);
      assert.equal(registry.leaveUser('alice', 'team'), 0);
    });

    it('throws RoomFullError when the user’s connections would not fit, joining none', () => {
      registry.add(connection('x', 'xavier'));
      registry.join(registry.get('x')!, 'small', 2);
      registry.add(connection('a1', 'alice'));
      registry.add(connection('a2', 'alice'));
      assert.throws(() => registry.joinUser('alice', 'small', 2), RoomFullError);
      assert.deepEqual(ids(registry.membersOf('small')), ['x']);
      // Not remembered either: a later connection does not join.
      const later = connection('a3', 'alice');
      registry.add(later);
      assert.equal(later.rooms.size, 0);
    });
  });

  describe('room limit', () => {
    it('join throws RoomFullError at the limit and leaves the room unchanged', () => {
      const a = connection('a', 'alice');
      const b = connection('b', 'bob');
      const c = connection('c', 'carol');
      for (const x of [a, b, c]) registry.add(x);
      registry.join(a, 'duo', 2);
      registry.join(b, 'duo', 2);
      assert.throws(
        () => registry.join(c, 'duo', 2),
        (error: unknown) => {
          assert.ok(error instanceof RoomFullError);
          assert.equal(error.name, 'RoomFullError');
          assert.match(error.message, /"duo" is full \(2 connections\)/);
          return true;
        },
      );
      assert.deepEqual(ids(registry.membersOf('duo')), ['a', 'b']);
      assert.equal(c.rooms.size, 0);
      // A member joining again is not refused.
      registry.join(a, 'duo', 2);
      // A place frees when someone leaves.
      registry.leave(a, 'duo');
      registry.join(c, 'duo', 2);
      assert.deepEqual(ids(registry.membersOf('duo')), ['b', 'c']);
    });
  });

  describe('counts for stats', () => {
    it('counts connections per user, subscribers per event and members per room', () => {
      const a1 = connection('a1', 'alice');
      const a2 = connection('a2', 'alice');
      const b1 = connection('b1', 'bob');
      for (const c of [a1, a2, b1]) registry.add(c);
      registry.subscribe(a1, 'upload.progress');
      registry.subscribe(b1, 'upload.progress');
      registry.subscribe(b1, 'file.ready');
      registry.join(a2, 'r1', 10);
      registry.joinUser('bob', 'r2', 10);

      assert.equal(registry.size, 3);
      assert.equal(registry.userCount, 2);
      assert.deepEqual(registry.userIds().sort(), ['alice', 'bob']);
      assert.deepEqual(registry.connectionsPerUser(), { alice: 2, bob: 1 });
      assert.deepEqual(registry.subscriptionCounts(), { 'upload.progress': 2, 'file.ready': 1 });
      assert.deepEqual(registry.roomCounts(), { r1: 1, r2: 1 });

      registry.remove(a2);
      assert.deepEqual(registry.connectionsPerUser(), { alice: 1, bob: 1 });
      assert.deepEqual(registry.roomCounts(), { r2: 1 });
    });

    it('counts users and rooms named like Object.prototype members as their own keys', () => {
      const proto = connection('p1', '__proto__');
      const ctor = connection('c1', 'constructor');
      for (const c of [proto, ctor]) registry.add(c);
      registry.join(proto, '__proto__', 10);
      const perUser = registry.connectionsPerUser();
      assert.deepEqual(Object.keys(perUser).sort(), ['__proto__', 'constructor']);
      assert.equal(Object.getPrototypeOf(perUser), Object.prototype);
      assert.equal(JSON.stringify(registry.roomCounts()), '{"__proto__":1}');
    });

    it('starts empty', () => {
      assert.equal(registry.size, 0);
      assert.equal(registry.userCount, 0);
      assert.deepEqual(registry.connectionsPerUser(), {});
      assert.deepEqual(registry.subscriptionCounts(), {});
      assert.deepEqual(registry.roomCounts(), {});
    });

    describe('watchFirstSubscriber', () => {
      it('calls back once, inside the first subscribe to the event, and not for other events', () => {
        const calls: string[] = [];
        registry.watchFirstSubscriber('user.status_changed', () =>
          calls.push(`first, had=${registry.hadSubscriber('user.status_changed')}`),
        );
        const c = connection('c1', 'alice');
        registry.add(c);
        registry.subscribe(c, 'upload.progress');
        assert.deepEqual(calls, []);
        assert.equal(registry.hadSubscriber('user.status_changed'), false);

        registry.subscribe(c, 'user.status_changed');
        assert.deepEqual(calls, ['first, had=true']);
        registry.unsubscribe(c, 'user.status_changed');
        registry.subscribe(c, 'user.status_changed');
        registry.subscribe(connection('c2', 'bob'), 'user.status_changed');
        assert.deepEqual(calls, ['first, had=true']);
        assert.equal(registry.hadSubscriber('user.status_changed'), true);
      });

      it('calls every callback of the event, in order', () => {
        const calls: number[] = [];
        registry.watchFirstSubscriber('user.status_changed', () => calls.push(1));
        registry.watchFirstSubscriber('user.status_changed', () => calls.push(2));
        registry.subscribe(connection('c1', 'alice'), 'user.status_changed');
        assert.deepEqual(calls, [1, 2]);
      });

      it('calls back at once when the event has (or had) a subscriber already', () => {
        const c = connection('c1', 'alice');
        registry.subscribe(c, 'user.status_changed');
        let calls = 0;
        registry.watchFirstSubscriber('user.status_changed', () => calls++);
        assert.equal(calls, 1);
        registry.unsubscribe(c, 'user.status_changed');
        registry.watchFirstSubscriber('user.status_changed', () => calls++);
        assert.equal(calls, 2, 'had a subscriber once: still called');
        registry.subscribe(c, 'user.status_changed');
        assert.equal(calls, 2);
      });
    });
  });
});
