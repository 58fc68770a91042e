import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TestClient } from './support/test-client.js';
import { buildFrame, RawWebSocket } from './support/raw-websocket.js';
import { assertPingWorks } from './support/wire.js';

/**
 * Hostile WebSocket frames, written byte by byte on a bare TCP socket after a real upgrade
 * (issue 6): each must end in the right protocol close, and the server must go on serving.
 */

const TEXT = 0x1;
const CONTINUATION = 0x0;
const PING = 0x9;
/** Per fuzz case: bytes that start a long frame swallow the ping, and nothing comes back. */
const FUZZ_WAIT_MS = 500;

describe('hostile frames', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({ realtime: { maxMessageSize: 4096 } });
  });
  after(() => server.close());

  /** A raw client past the upgrade and `connection.established`. */
  async function raw(extraHeaders: Record<string, string> = {}): Promise<RawWebSocket> {
    const client = await RawWebSocket.open(server.port, '/ws', {
      Authorization: `Bearer ${server.token(`frames-${++users}`)}`,
      ...extraHeaders,
    });
    await client.textCount(1);
    assert.equal(JSON.parse(client.texts[0]!).type, 'connection.established');
    return client;
  }

  async function assertFreshClientServed(): Promise<void> {
    const fresh = await TestClient.open(server.wsUrl, server.token(`fresh-${++users}`));
    try {
      await assertPingWorks(fresh, 'fresh');
    } finally {
      fresh.close();
    }
  }

  /** Sends `bytes`, expects the close `code` (and a reason matching `reason`), then a fresh client. */
  async function expectClose(bytes: Buffer[], code: number, reason?: RegExp): Promise<void> {
    const client = await raw();
    try {
      for (const chunk of bytes) client.write(chunk);
      const closed = await client.closed();
      assert.equal(closed.code, code, `close ${closed.code} ${closed.reason}`);
      if (reason) assert.match(closed.reason, reason);
    } finally {
      client.destroy();
    }
    await assertFreshClientServed();
  }

  it('closes 1009 on a lying 64-bit length (2^63 - 1) without waiting for the bytes', () =>
    expectClose([buildFrame(TEXT, Buffer.from('{}'), { declaredLength: 2n ** 63n - 1n })], 1009));

  it('closes 1009 on a declared length over maxMessageSize before the payload arrives', () =>
    expectClose(
      [buildFrame(TEXT, Buffer.from('{"type":'), { declaredLength: 10n * 1024n * 1024n })],
      1009,
    ));

  it('closes 1009 when fragments add up past maxMessageSize', () => {
    const part = Buffer.alloc(1500, 0x20);
    return expectClose(
      [
        buildFrame(TEXT, part, { fin: false }),
        buildFrame(CONTINUATION, part, { fin: false }),
        buildFrame(CONTINUATION, part, { fin: false }),
      ],
      1009,
    );
  });

  it('closes 1008 on a flood of 20,000 empty fragments of one message', () => {
    const frames = [buildFrame(TEXT, Buffer.from('{'), { fin: false })];
    const empty = buildFrame(CONTINUATION, Buffer.alloc(0), { fin: false });
    for (let i = 0; i < 20_000; i++) frames.push(empty);
    return expectClose([Buffer.concat(frames)], 1008, /^Policy violation$/);
  });

  it('closes 1002 on an unmasked client frame', () =>
    expectClose([buildFrame(TEXT, Buffer.from('{"type":"ping"}'), { mask: false })], 1002));

  it('closes 1002 on a control frame over 125 bytes', () =>
    expectClose([buildFrame(PING, Buffer.alloc(126))], 1002));

  it('closes 1002 on a fragmented control frame', () =>
    expectClose([buildFrame(PING, Buffer.from('x'), { fin: false })], 1002));

  it('closes 1002 on RSV1 without a negotiated extension', () =>
    expectClose([buildFrame(TEXT, Buffer.from('{"type":"ping"}'), { rsv1: true })], 1002));

  it('closes 1002 on a reserved opcode', () =>
    expectClose([buildFrame(0x3, Buffer.from('x'))], 1002));

  it('closes 1002 on a continuation frame with no message to continue', () =>
    expectClose([buildFrame(CONTINUATION, Buffer.from('x'))], 1002));

  it('closes 1007 on invalid UTF-8 split across fragments', () =>
    expectClose(
      [
        buildFrame(TEXT, Buffer.from([0x7b, 0xe2, 0x82]), { fin: false }),
        buildFrame(CONTINUATION, Buffer.from([0x28, 0x7d])),
      ],
      1007,
    ));

  it('never negotiates permessage-deflate, so no compression bomb can be sent', async () => {
    const client = await raw({
      'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
    });
    try {
      assert.equal(client.headers.get('sec-websocket-extensions'), undefined);
      // A "compressed" frame is then just a frame with RSV1 set: a protocol error.
      client.write(buildFrame(TEXT, Buffer.from([0xf2, 0x48, 0xcd]), { rsv1: true }));
      assert.equal((await client.closed()).code, 1002);
    } finally {
      client.destroy();
    }
    await assertFreshClientServed();
  });

  it('survives arbitrary bytes after the upgrade (fast-check) and keeps serving', async () => {
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
        const client = await raw();
        try {
          client.write(Buffer.from(bytes));
          // Either a close, or the connection still answers a well-formed ping after the bytes
          // (then the bytes were an incomplete frame, or frames the server accepted).
          const ping = buildFrame(TEXT, Buffer.from('{"type":"ping","id":"after"}'));
          client.write(ping);
          const closed = await Promise.race([
            client.closed(FUZZ_WAIT_MS),
            client.textCount(2, FUZZ_WAIT_MS).then(() => undefined),
          ]).catch(() => undefined);
          const key = closed ? String(closed.code) : 'open or waiting';
          codes.set(key, (codes.get(key) ?? 0) + 1);
          // The bytes may hold a client close frame, which the server echoes with its code:
          // any valid code can come back, but never a server fault (1011) nor a made-up one.
          if (closed?.code !== undefined) {
            const valid = (closed.code >= 1000 && closed.code <= 1014) || closed.code >= 3000;
            assert.ok(
              valid && closed.code !== 1011 && closed.code <= 4999,
              `close ${closed.code} after ${Buffer.from(bytes).toString('hex')}`,
            );
          }
          for (const text of client.texts) {
            const message = JSON.parse(text) as { type?: unknown };
            assert.equal(typeof message.type, 'string');
          }
        } finally {
          client.destroy();
        }
      }),
      { numRuns: 150, interruptAfterTimeLimit: 60_000 },
    );
    assert.ok(codes.size > 0);
    await assertFreshClientServed();
  });
});
