import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WebSocket } from 'ws';
import { CloseCode } from '../../protocol/index.js';
import type { ConnectionCloser } from '../gateway/connection-closer.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import { RealtimeConnection } from '../registry/realtime-connection.js';
import { LocalControl } from './local-control.js';

function control() {
  const registry = new ConnectionRegistry();
  const events: string[] = [];
  const closer = {
    close: (connection: RealtimeConnection, code: number) => {
      if (connection.closing) return;
      connection.closing = true;
      events.push(`close ${connection.id} ${code}`);
    },
  } as unknown as ConnectionCloser;
  const open = (id: string, userId: string) => {
    const principal = { userId, isAdmin: false, expiresAt: undefined, claims: {} };
    const connection = new RealtimeConnection(
      id,
      {} as WebSocket,
      principal,
      { remoteAddress: '127.0.0.1' },
      0,
    );
    registry.add(connection);
    return connection;
  };
  const local = new LocalControl(registry, closer, 100, (connection) =>
    events.push(`told ${connection.id}`),
  );
  return { local, events, open };
}

describe('LocalControl', () => {
  it('tells a connection closed with 4008 why, just before the close, and only that code', () => {
    const { local, events, open } = control();
    open('c1', 'u');
    open('c2', 'u');
    open('c3', 'v');
    assert.equal(local.disconnectConnection('c1', CloseCode.CONNECTION_LIMIT_EXCEEDED, 'r'), true);
    assert.equal(local.disconnectUser('u', CloseCode.CONNECTION_LIMIT_EXCEEDED, 'r'), 2);
    assert.equal(local.disconnectConnection('c3', 4004, 'kicked'), true);
    assert.equal(
      local.disconnectConnection('gone', CloseCode.CONNECTION_LIMIT_EXCEEDED, 'r'),
      false,
    );
    assert.deepEqual(events, [
      'told c1',
      'close c1 4008',
      // c1 again: closing already, neither told nor closed twice.
      'told c2',
      'close c2 4008',
      'close c3 4004',
    ]);
  });
});
