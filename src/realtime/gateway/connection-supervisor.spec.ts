import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { resolveRealtimeOptions } from '../realtime-options.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import { RealtimeConnection } from '../registry/realtime-connection.js';
import { TokenExpirySchedule } from '../registry/token-expiry-schedule.js';
import type { ConnectionCloser } from './connection-closer.js';
import { ConnectionSupervisor } from './connection-supervisor.js';

/** Turns of the event loop so far: a check-phase counter, bounded by the caller's stop(). */
function turnCounter(): { readonly turn: number; stop(): void } {
  let turn = 0;
  let running = true;
  const next = (): void => {
    turn++;
    if (running && turn < 100_000) setImmediate(next);
  };
  setImmediate(next);
  return {
    get turn() {
      return turn;
    },
    stop: () => {
      running = false;
    },
  };
}

describe('ConnectionSupervisor heartbeat', () => {
  let supervisor: ConnectionSupervisor | undefined;
  afterEach(() => supervisor?.beforeApplicationShutdown());

  it('writes the pings of one tick a few hundred per turn of the event loop, skipping closing connections', async () => {
    // A heartbeat of one tick: every connection is due in the same tick.
    const options = resolveRealtimeOptions({
      jwt: { secret: 'x'.repeat(32) },
      heartbeatIntervalMs: 100,
      connectionTimeoutMs: 60_000,
    });
    const registry = new ConnectionRegistry();
    const turns = turnCounter();
    const pingedIn: number[] = [];
    const connections: RealtimeConnection[] = [];
    for (let i = 0; i < 600; i++) {
      // The supervisor reads readyState and calls ping(); nothing else of the socket.
      const socket = {
        readyState: WebSocket.OPEN,
        ping: () => pingedIn.push(turns.turn),
      } as unknown as WebSocket;
      const connection = new RealtimeConnection(
        `c${i}`,
        socket,
        { userId: `u${i}`, isAdmin: false, expiresAt: undefined, claims: {} },
        '127.0.0.1',
        Date.now(),
      );
      registry.add(connection);
      connections.push(connection);
    }
    connections[7]!.closing = true;
    const closer = { close: () => undefined } as unknown as ConnectionCloser;
    supervisor = new ConnectionSupervisor(options, registry, new TokenExpirySchedule(), closer);
    supervisor.onApplicationBootstrap();
    // The first tick schedules, the second pings; bounded wait.
    for (let waited = 0; pingedIn.length < 599 && waited < 3_000; waited += 20) await sleep(20);
    turns.stop();
    assert.equal(pingedIn.length, 599, 'every open connection once, not the closing one');
    const perTurn = new Map<number, number>();
    for (const turn of pingedIn) perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
    // 256 per turn; the closing connection's slot is in the first group.
    assert.deepEqual([...perTurn.values()], [255, 256, 88]);
  });
});
