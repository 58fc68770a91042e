import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { WebSocket } from 'ws';
import {
  type ConnectionClosedEvent,
  ConnectionRegistry,
  RealtimeService,
} from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import { assertAllEnvelopes, assertPingWorks } from './support/wire.js';

const MAX_BUFFERED_BYTES = 64 * 1024;
const CLOSE_GRACE_MS = 500;
const MAX_SENDS = 2000;
/** Sends after the slow client was closed, to show the reading client is still served. */
const SENDS_AFTER_CLOSE = 50;
const PAD = 'x'.repeat(8 * 1024);

describe('slow consumers (4010)', () => {
  let server: TestApp;
  let service: RealtimeService;
  let registry: ConnectionRegistry;
  before(async () => {
    server = await startTestApp({
      realtime: { maxBufferedBytes: MAX_BUFFERED_BYTES, closeGraceMs: CLOSE_GRACE_MS },
    });
    service = server.app.get(RealtimeService);
    registry = server.app.get(ConnectionRegistry);
  });
  after(() => server.close());

  it('closes a client that stops reading, and keeps serving one that reads', async () => {
    const slow = await TestClient.open(server.wsUrl, server.token('slow-reader'));
    const fast = await TestClient.open(server.wsUrl, server.token('fast-reader'));
    const slowId = slow.received[0]!.data.connection_id as string;
    const slowConnection = registry.get(slowId)!;
    assert.ok(slowConnection);
    const closes: ConnectionClosedEvent[] = [];
    const subscription = service.connectionClosed$.subscribe((event) => {
      if (event.connectionId === slowId) closes.push(event);
    });
    try {
      // The slow client's TCP socket stops reading: the server's send buffer fills up.
      (slow.socket as any)._socket.pause();

      let sent = 0;
      let afterClose = 0;
      while (sent < MAX_SENDS && afterClose < SENDS_AFTER_CLOSE) {
        await service.sendToUsers(['slow-reader', 'fast-reader'], 'bulk', { seq: sent, pad: PAD });
        sent++;
        if (closes.length > 0) afterClose++;
        // One event-loop turn per send: the reading client (same process) reads meanwhile.
        await nextTurn();
      }
      assert.equal(
        afterClose,
        SENDS_AFTER_CLOSE,
        `the slow client was closed within ${sent} sends`,
      );

      assert.equal(closes.length, 1);
      assert.equal(closes[0]!.code, 4010);
      assert.equal(closes[0]!.reason, 'Slow consumer');
      assert.equal(registry.get(slowId), undefined, 'the registry no longer lists it');
      assert.equal(await service.isUserConnected('slow-reader'), false);

      // The reading client got every message, in order, and is still open.
      await eventually(() => fast.ofType('bulk').length === sent, 10_000, 'all bulk messages');
      const seqs = fast.ofType('bulk').map((m) => m.data.seq as number);
      assert.deepEqual(
        seqs,
        Array.from({ length: sent }, (_, i) => i),
      );
      assert.equal(fast.closeInfo, undefined);
      await assertPingWorks(fast);
      assertAllEnvelopes(fast);

      // The close frame cannot reach the paused client: its socket is dropped after the grace.
      await eventually(
        () => slowConnection.socket.readyState === WebSocket.CLOSED,
        CLOSE_GRACE_MS + 3000,
        'the slow socket to be dropped',
      );
      assert.equal(closes.length, 1, 'one close event only');
    } finally {
      subscription.unsubscribe();
      slow.socket.terminate();
      fast.close();
    }
  });
});
