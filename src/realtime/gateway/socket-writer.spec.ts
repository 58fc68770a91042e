import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { resolveRealtimeOptions } from '../realtime-options.js';
import { RealtimeMetrics } from '../realtime-metrics.js';
import { RealtimeConnection } from '../registry/realtime-connection.js';
import type { ConnectionCloser } from './connection-closer.js';
import { SocketWriter } from './socket-writer.js';

const MAX_BUFFERED_BYTES = 64 * 1024;

interface Pair {
  server: WebSocketServer;
  connection: RealtimeConnection;
  client: WebSocket;
  received: string[];
}

async function pair(): Promise<Pair> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const accepted = once(server, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  const received: string[] = [];
  client.on('message', (data) => received.push(String(data)));
  await once(client, 'open');
  const [socket] = await accepted;
  const principal = { userId: 'user-1', isAdmin: false, expiresAt: undefined, claims: {} };
  const connection = new RealtimeConnection(
    'c1',
    socket,
    principal,
    { remoteAddress: '127.0.0.1' },
    Date.now(),
  );
  return { server, connection, client, received };
}

function frame(seq: number, padBytes = 0): Buffer {
  return Buffer.from(JSON.stringify({ type: 'bulk', data: { seq, pad: 'x'.repeat(padBytes) } }));
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('SocketWriter coalescing (cork until the end of the turn)', () => {
  let p: Pair;
  let writer: SocketWriter;
  let closes: Array<{ code: number; reason: string }>;
  beforeEach(async () => {
    p = await pair();
    closes = [];
    const closer = {
      close(connection: RealtimeConnection, code: number, reason: string) {
        connection.closing = true;
        closes.push({ code, reason });
        connection.socket.close(code, reason);
      },
    } as unknown as ConnectionCloser;
    const options = resolveRealtimeOptions({
      jwt: { secret: 'x'.repeat(32) },
      maxBufferedBytes: MAX_BUFFERED_BYTES,
    });
    writer = new SocketWriter(options, closer, new RealtimeMetrics());
  });
  afterEach(async () => {
    p.client.terminate();
    await new Promise<void>((resolve) => p.server.close(() => resolve()));
  });

  it('holds the frames of one turn in one corked write and flushes them in order', async () => {
    const stream = (p.connection.socket as unknown as { _socket: { writableCorked: number } })
      ._socket;
    for (let seq = 0; seq < 100; seq++)
      assert.equal(writer.write(p.connection, frame(seq), true), true);
    assert.equal(stream.writableCorked, 1, 'corked while the turn lasts');
    assert.ok(p.connection.socket.bufferedAmount > 0, 'bufferedAmount counts the corked frames');
    await nextTurn();
    assert.equal(stream.writableCorked, 0, 'uncorked at the end of the turn');
    assert.equal(p.connection.corked, false);
    await until(() => p.received.length === 100, '100 frames');
    assert.deepEqual(
      p.received.map((text) => JSON.parse(text).data.seq),
      Array.from({ length: 100 }, (_, i) => i),
    );
    // The next turn corks again.
    writer.write(p.connection, frame(100), true);
    assert.equal(stream.writableCorked, 1);
    await until(() => p.received.length === 101, 'the frame of the next turn');
  });

  it('sends a direct reply at once, or after the fan-out frames held in this turn', async () => {
    const stream = (p.connection.socket as unknown as { _socket: { writableCorked: number } })
      ._socket;
    assert.equal(writer.write(p.connection, frame(0)), true);
    assert.equal(stream.writableCorked, 0, 'a direct reply is not held back');
    writer.write(p.connection, frame(1), true);
    writer.write(p.connection, frame(2));
    writer.write(p.connection, frame(3), true);
    assert.equal(stream.writableCorked, 1);
    await until(() => p.received.length === 4, '4 frames');
    assert.deepEqual(
      p.received.map((text) => JSON.parse(text).data.seq),
      [0, 1, 2, 3],
    );
  });

  it('does not count frames held by the cork against a reading peer', async () => {
    // Three frames of half the bound in one turn: the kernel takes them, the peer is not slow.
    for (let seq = 0; seq < 3; seq++) {
      assert.equal(writer.write(p.connection, frame(seq, MAX_BUFFERED_BYTES / 2), true), true);
    }
    assert.deepEqual(closes, []);
    await until(() => p.received.length === 3, '3 large frames');
  });

  it('still closes a peer that stops reading with 4010', async () => {
    (p.client as unknown as { _socket: { pause(): void } })._socket.pause();
    const closed = once(p.client, 'close');
    let sent = 0;
    while (closes.length === 0 && sent < 10_000) {
      writer.write(p.connection, frame(sent, 8 * 1024), true);
      sent++;
      if (sent % 4 === 0) await nextTurn();
    }
    assert.deepEqual(closes, [{ code: 4010, reason: 'Slow consumer' }]);
    assert.equal(writer.write(p.connection, frame(sent)), false, 'nothing more is written');
    (p.client as unknown as { _socket: { resume(): void } })._socket.resume();
    const [code] = (await closed) as [number];
    assert.equal(code, 4010);
    assert.ok(p.received.length < sent);
  });

  it('delivers frames written just before a close ahead of the close frame', async () => {
    const closed = once(p.client, 'close');
    for (let seq = 0; seq < 10; seq++) writer.write(p.connection, frame(seq), true);
    p.connection.socket.close(1001, 'Going away');
    const [code] = (await closed) as [number];
    assert.equal(code, 1001);
    assert.equal(p.received.length, 10);
  });
});
