import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ConnectionRegistry, RealtimeService } from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import { sleep } from './support/wire.js';

/** PROTOCOL.md section 9: a replay cut short by a client that does not read is no recovery. */

const MAX_BUFFERED_BYTES = 256 * 1024;
const CLOSE_GRACE_MS = 300;
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
      const connection = registry.get(connectionId)!;
      assert.ok(connection);
      // The client stops reading; frames with no stream (so no history, nothing to replay) fill
      // the kernel's buffers, then the send buffer to just under the replay's share of it.
      tcp.pause();
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
});
