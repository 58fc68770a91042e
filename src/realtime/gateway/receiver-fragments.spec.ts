import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocket, WebSocketServer, type RawData, type ServerOptions } from 'ws';
import { reuseFragments } from './receiver-fragments.js';

interface Seen {
  text: string;
  /** The receiver's array right after the listener ran, and its length then. */
  after: unknown;
  afterLength: number;
}

const fragmentsOf = (socket: WebSocket): unknown =>
  (socket as unknown as { _receiver?: { _fragments?: unknown } })._receiver?._fragments;

/**
 * A ws server whose one connection's listener calls reuseFragments (or not), and a client that
 * sends a plain message, one in three frames, a binary one and a last plain one.
 */
async function exchange(options: ServerOptions, reuse: boolean, binaryType?: string) {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const seen: Seen[] = [];
  const done = new Promise<void>((resolve) => {
    server.on('connection', (socket) => {
      if (binaryType) socket.binaryType = binaryType as WebSocket['binaryType'];
      let kept: unknown[] | undefined;
      socket.on('message', (data: RawData | Buffer[], isBinary: boolean) => {
        if (reuse) kept = reuseFragments(socket, data, kept);
        const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
        const after = fragmentsOf(socket);
        seen.push({
          text: `${isBinary ? 'bin' : 'txt'}:${bytes.toString()}`,
          after,
          afterLength: Array.isArray(after) ? after.length : -1,
        });
        if (seen.length === 4) resolve();
      });
    });
  });
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(client, 'open');
  client.send('first');
  client.send('one ', { fin: false });
  client.send('in three ', { fin: false });
  client.send('frames', { fin: true });
  client.send(Buffer.from('binary'), { binary: true });
  client.send('last');
  await done;
  client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return seen;
}

const EXPECTED = ['txt:first', 'txt:one in three frames', 'bin:binary', 'txt:last'];

describe('reuseFragments on a ws server socket', () => {
  it('pins the ws internal it relies on: a new array in _fragments after every message', async () => {
    const seen = await exchange({}, false);
    assert.deepEqual(
      seen.map((s) => s.text),
      EXPECTED,
    );
    assert.ok(seen.every((s) => Array.isArray(s.after) && s.afterLength === 0));
    assert.equal(new Set(seen.map((s) => s.after)).size, 4, 'one array per message');
  });

  for (const allowSynchronousEvents of [true, false]) {
    it(`keeps one emptied array per connection, messages intact (allowSynchronousEvents: ${allowSynchronousEvents})`, async () => {
      const seen = await exchange({ allowSynchronousEvents }, true);
      assert.deepEqual(
        seen.map((s) => s.text),
        EXPECTED,
      );
      assert.ok(seen.every((s) => Array.isArray(s.after) && s.afterLength === 0));
      assert.equal(new Set(seen.map((s) => s.after)).size, 1, 'the same array every time');
    });
  }

  it("leaves the message alone when it is the array itself (binaryType 'fragments')", async () => {
    const seen = await exchange({}, true, 'fragments');
    assert.deepEqual(
      seen.map((s) => s.text),
      EXPECTED,
    );
  });
});
