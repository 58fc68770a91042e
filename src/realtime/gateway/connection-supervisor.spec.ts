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

/**
 * Turns of the event loop so far: a check-phase counter until the caller's stop(), bounded in
 * time and count. (A bound of 100,000 turns alone was reached in ~200 ms on a fast machine,
 * before the pings it was to tell apart, which then all seemed to share the last turn.)
 */
function turnCounter(): { readonly turn: number; stop(): void } {
  let turn = 0;
  let running = true;
  const deadline = Date.now() + 10_000;
  const next = (): void => {
    turn++;
    if (running && turn < 50_000_000 && Date.now() < deadline) setImmediate(next);
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

  function connections(
    count: number,
    turns: { readonly turn: number },
    pingedIn: number[],
    // One instant for all (on the monotonic scale the admission uses): they are due together.
    connectedAt = performance.timeOrigin + performance.now(),
  ): { registry: ConnectionRegistry; list: RealtimeConnection[] } {
    const registry = new ConnectionRegistry();
    const list: RealtimeConnection[] = [];
    for (let i = 0; i < count; i++) {
      // The supervisor reads readyState and calls ping(); nothing else of the socket.
      const socket = {
        readyState: WebSocket.OPEN,
        ping: () => pingedIn.push(turns.turn),
      } as unknown as WebSocket;
      const connection = new RealtimeConnection(
        `c${i}`,
        socket,
        { userId: `u${i}`, isAdmin: false, expiresAt: undefined, claims: {} },
        { remoteAddress: '127.0.0.1' },
        connectedAt,
      );
      registry.add(connection);
      list.push(connection);
    }
    return { registry, list };
  }

  function liveness(heartbeatIntervalMs: number, connectionTimeoutMs: number) {
    return resolveRealtimeOptions({
      jwt: { secret: 'x'.repeat(32) },
      heartbeatIntervalMs,
      connectionTimeoutMs,
    });
  }

  function perTurn(turns: number[]): number[] {
    const counts = new Map<number, number>();
    for (const turn of turns) counts.set(turn, (counts.get(turn) ?? 0) + 1);
    return [...counts.values()];
  }

  it('writes the pings of one tick a few hundred per turn of the event loop, skipping closing connections', async () => {
    // A heartbeat of one tick: every connection is due in the same tick.
    const options = liveness(100, 60_000);
    const turns = turnCounter();
    const pingedIn: number[] = [];
    const { registry, list } = connections(600, turns, pingedIn);
    list[7]!.closing = true;
    const closer = { close: () => undefined } as unknown as ConnectionCloser;
    supervisor = new ConnectionSupervisor(options, registry, new TokenExpirySchedule(), closer);
    supervisor.onApplicationBootstrap();
    // Due a heartbeat after the connect, the first tick pings; bounded wait.
    for (let waited = 0; pingedIn.length < 599 && waited < 3_000; waited += 20) await sleep(20);
    turns.stop();
    assert.equal(pingedIn.length, 599, 'every open connection once, not the closing one');
    // 256 per turn; the closing connection's slot is in the first group.
    assert.deepEqual(perTurn(pingedIn), [255, 256, 88]);
  });

  it('closes timed-out connections a few hundred per turn, each with 4000', async () => {
    const options = liveness(100, 200);
    const turns = turnCounter();
    // Connected a second ago and silent since.
    const connectedAt = performance.timeOrigin + performance.now() - 1_000;
    const { registry } = connections(600, turns, [], connectedAt);
    const closedIn: number[] = [];
    const codes = new Set<number>();
    const closer = {
      close: (connection: RealtimeConnection, code: number) => {
        connection.closing = true;
        registry.remove(connection);
        codes.add(code);
        closedIn.push(turns.turn);
      },
    } as unknown as ConnectionCloser;
    supervisor = new ConnectionSupervisor(options, registry, new TokenExpirySchedule(), closer);
    supervisor.onApplicationBootstrap();
    for (let waited = 0; closedIn.length < 600 && waited < 3_000; waited += 20) await sleep(20);
    turns.stop();
    assert.deepEqual([...codes], [4000]);
    assert.equal(closedIn.length, 600);
    assert.deepEqual(perTurn(closedIn), [256, 256, 88]);
  });
  it('after a late sweep (the process stalled) judges timeouts on the next one, even when that is late too', () => {
    const options = liveness(100, 200);
    // Silent for a second: timed out on any sweep that judges.
    const connectedAt = performance.timeOrigin + performance.now() - 1_000;
    const { registry } = connections(1, { turn: 0 }, [], connectedAt);
    const codes: number[] = [];
    const closer = {
      close: (connection: RealtimeConnection, code: number) => {
        registry.remove(connection);
        codes.push(code);
      },
    } as unknown as ConnectionCloser;
    supervisor = new ConnectionSupervisor(options, registry, new TokenExpirySchedule(), closer);
    supervisor.onApplicationBootstrap();
    // Sweeps by hand from here: the interval is stopped, the queues still work.
    supervisor.beforeApplicationShutdown();
    const internals = supervisor as unknown as { sweptAt: number; checkLiveness(): void };
    internals.sweptAt -= 1_000;
    internals.checkLiveness();
    assert.deepEqual(codes, [], 'not judged on the sweep after a stall');
    internals.sweptAt -= 1_000;
    internals.checkLiveness();
    assert.deepEqual(codes, [4000], 'judged on the next, late or not');
  });
});
