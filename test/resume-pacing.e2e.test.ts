import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ConnectionRegistry, RealtimeService } from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import { sleep } from './support/wire.js';

/** PROTOCOL.md section 9: a replay cut short by a client that does not read is no recovery. */

const MAX_BUFFERED_BYTES = 256 * 1024;
/** Long enough that the client's pause can end well inside a second stream's wait, were there one. */
const CLOSE_GRACE_MS = 1000;
const MISSED = 9;
/** Bound on the filler frames that fill the kernel's buffers before the send buffer grows. */
const MAX_FILLERS = 5_000;

describe('recovery: a replay paced by a client that does not drain', () => {
  let server: TestApp;
  let service: RealtimeService;
  let registry: ConnectionRegistry;
  before(async () => {
    server = await startTestApp({
      realtime: {
        maxMessageSize: 32 * 1024,
        maxBufferedBytes: MAX_BUFFERED_BYTES,
        closeGraceMs: CLOSE_GRACE_MS,
      },
    });
    service = server.app.get(RealtimeService);
    registry = server.app.get(ConnectionRegistry);
  });
  after(() => server.close());

  /**
   * With the client no longer reading, frames with no stream (so no history, nothing to replay)
   * fill the kernel's buffers, then the send buffer to just under the replay's share of it.
   */
  async function fillSendBuffer(connectionId: string): Promise<void> {
    const connection = registry.get(connectionId);
    assert.ok(connection);
    const filler = { pad: 'f'.repeat(8000) };
    const target = MAX_BUFFERED_BYTES / 2 - 30_000;
    let fillers = 0;
    while (connection.socket.bufferedAmount < target && fillers < MAX_FILLERS) {
      await service.sendToConnection(connectionId, 'n.filler', filler);
      fillers++;
      // Past the end of the turn: what the writer corked is handed to the socket.
      await sleep(0);
    }
    assert.ok(connection.socket.bufferedAmount >= target, `send buffer filled (${fillers})`);
  }

  it('says recovered: false (too_slow) with what was replayed when the replay stops early', async () => {
    const userId = 'slow-resumer';
    const first = await TestClient.open(server.wsUrl, server.token(userId));
    await service.sendToUser(userId, 'n.slow', { n: 0 });
    const last = await first.next('n.slow');
    first.close();
    await eventually(() => first.closeInfo !== undefined);
    await sleep(50);
    const blob = 'x'.repeat(20_000);
    for (let n = 1; n <= MISSED; n++) await service.sendToUser(userId, 'n.slow', { n, blob });

    const again = await TestClient.open(server.wsUrl, server.token(userId));
    const tcp = (again.socket as unknown as { _socket: Socket })._socket;
    try {
      const connectionId = again.received[0]!.data.connection_id as string;
      tcp.pause();
      await fillSendBuffer(connectionId);

      again.send({
        type: 'resume',
        data: {
          positions: [{ stream: last.stream, offset: last.offset, epoch: last.epoch }],
        },
        id: 'r-slow',
      });
      // The replay waits for the buffer to drain at most closeGraceMs, then gives up.
      await sleep(CLOSE_GRACE_MS + 300);
      tcp.resume();
      await eventually(
        () => again.received.some((m) => m.in_reply_to === 'r-slow'),
        5000,
        'resume.result',
      );
      const result = again.received.find((m) => m.in_reply_to === 'r-slow')!;
      assert.equal(result.type, 'resume.result');
      const replayed = again.ofType('n.slow').map((m) => m.data.n as number);
      assert.ok(replayed.length < MISSED, `the replay stopped early (${replayed.length})`);
      assert.deepEqual(
        replayed,
        Array.from({ length: replayed.length }, (_, i) => i + 1),
      );
      assert.equal(result.data.recovered, false);
      const [stream] = result.data.streams;
      assert.equal(stream.stream, last.stream);
      assert.equal(stream.recovered, false);
      assert.equal(stream.reason, 'too_slow');
      assert.equal(stream.replayed, replayed.length);
      assert.equal(again.closeInfo, undefined, 'the client stays connected');
    } finally {
      tcp.resume();
      again.close();
    }
  });

  it('waits closeGraceMs once per resume: after a stream is cut short, the next ones do not wait', async () => {
    const userId = 'slow-many';
    const rooms = ['pacing-a', 'pacing-b', 'pacing-c'];
    const first = await TestClient.open(server.wsUrl, server.token(userId));
    const firstId = first.received[0]!.data.connection_id as string;
    for (const room of rooms) await service.joinRoom(room, { connectionId: firstId });
    await service.sendToUser(userId, 'n.many', { n: 0 });
    for (const room of rooms) await service.sendToRoom(room, 'n.many', { n: 0, room });
    await eventually(() => first.ofType('n.many').length === 1 + rooms.length);
    const positions = first
      .ofType('n.many')
      .map((m) => ({ stream: m.stream!, offset: m.offset!, epoch: m.epoch! }));
    first.close();
    await eventually(() => first.closeInfo !== undefined);
    await sleep(50);
    const blob = 'x'.repeat(20_000);
    for (let n = 1; n <= 3; n++) {
      await service.sendToUser(userId, 'n.many', { n, blob });
      for (const room of rooms) await service.sendToRoom(room, 'n.many', { n, room, blob });
    }

    const again = await TestClient.open(server.wsUrl, server.token(userId));
    const tcp = (again.socket as unknown as { _socket: Socket })._socket;
    try {
      const connectionId = again.received[0]!.data.connection_id as string;
      for (const room of rooms) await service.joinRoom(room, { connectionId });
      tcp.pause();
      await fillSendBuffer(connectionId);
      again.send({ type: 'resume', data: { positions }, id: 'r-many' });
      // The first stream gives up after closeGraceMs. Were each stream to wait as long, the
      // second would still be waiting when the client reads again, and would then replay all.
      await sleep(CLOSE_GRACE_MS * 2);
      tcp.resume();
      await eventually(
        () => again.received.some((m) => m.in_reply_to === 'r-many'),
        CLOSE_GRACE_MS * rooms.length + 5000,
        'resume.result',
      );
      const result = again.received.find((m) => m.in_reply_to === 'r-many')!;
      assert.equal(result.data.recovered, false);
      const streams = result.data.streams as Array<{
        stream: string;
        recovered: boolean;
        replayed: number;
        reason?: string;
      }>;
      assert.deepEqual(
        streams.map((s) => s.stream),
        positions.map((p) => p.stream),
      );
      for (const stream of streams) {
        assert.equal(stream.recovered, false, `${stream.stream} not recovered`);
        assert.equal(stream.reason, 'too_slow', `${stream.stream}: too_slow`);
      }
      const replayed = again.ofType('n.many');
      assert.equal(
        replayed.length,
        streams.reduce((total, s) => total + s.replayed, 0),
        'each stream says what it replayed',
      );
      assert.equal(again.closeInfo, undefined, 'the client stays connected');
    } finally {
      tcp.resume();
      again.close();
    }
  });
});
