import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect } from 'node:net';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { endUnlessFinished, skipSecondReceiverEnd } from './receiver-end-guard.js';

type Step = (stream: Writable, log: string[]) => void;

/** A Writable that records what it emits and what its callbacks get. */
function recorded(guarded: boolean): { stream: Writable; log: string[] } {
  const log: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      log.push(`write ${String(chunk)}`);
      callback();
    },
  });
  if (guarded) stream.end = endUnlessFinished;
  for (const event of ['finish', 'close', 'prefinish']) stream.on(event, () => log.push(event));
  stream.on('error', (error: Error & { code?: string }) => log.push(`error ${error.code}`));
  return { stream, log };
}

const callback =
  (label: string, log: string[]) =>
  (error?: Error | null): void => {
    log.push(`${label} ${(error as (Error & { code?: string }) | null | undefined)?.code ?? 'ok'}`);
  };

/** Call sequences, each step followed by a turn of the event loop. */
const SEQUENCES: Record<string, Step[]> = {
  'end once': [(s) => s.end()],
  'end, end': [(s) => s.end(), (s) => s.end()],
  'end twice in one turn, then again': [
    (s) => {
      s.end();
      s.end();
    },
    (s) => s.end(),
  ],
  'end, end with a callback': [(s) => s.end(), (s, log) => s.end(callback('cb', log))],
  'end, end with a chunk': [(s) => s.end(), (s) => s.end('late')],
  'write, end, end': [(s) => s.write('a'), (s) => s.end(), (s) => s.end()],
  'cork, end, end': [
    (s) => {
      s.cork();
      s.write('a');
    },
    (s) => s.end(),
    (s) => s.end(),
  ],
  'destroy, end': [(s) => s.destroy(), (s) => s.end()],
  'destroy, end with a callback': [(s) => s.destroy(), (s, log) => s.end(callback('cb', log))],
  'end with a chunk and a callback, end': [
    (s, log) => s.end('x', callback('cb', log)),
    (s) => s.end(),
  ],
};

async function run(
  steps: Step[],
  guarded: boolean,
): Promise<{ log: string[]; results: unknown[] }> {
  const { stream, log } = recorded(guarded);
  const results: unknown[] = [];
  for (const step of steps) {
    try {
      step(stream, log);
      results.push('returned');
    } catch (error) {
      results.push(`threw ${(error as Error & { code?: string }).code}`);
    }
    await nextTurn();
    await nextTurn();
  }
  log.push(`finished=${stream.writableFinished} destroyed=${stream.destroyed}`);
  return { log, results };
}

describe('endUnlessFinished', () => {
  for (const [name, steps] of Object.entries(SEQUENCES)) {
    it(`does what Writable's end() does: ${name}`, async () => {
      assert.deepEqual(await run(steps, true), await run(steps, false));
    });
  }

  it('returns the stream itself on a finished stream', async () => {
    const { stream } = recorded(true);
    stream.end();
    await once(stream, 'finish');
    assert.equal(stream.end(), stream);
  });
});

/** A ws server on a free loopback port, and its first connection to come. */
async function listening(): Promise<{
  server: WebSocketServer;
  port: number;
  accepted: Promise<[WebSocket]>;
}> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, port, accepted: once(server, 'connection') as Promise<[WebSocket]> };
}

describe('skipSecondReceiverEnd on a ws server socket', () => {
  it("replaces the receiver's end (a ws internal: a ws upgrade that moves it fails here)", async () => {
    const { server, port, accepted } = await listening();
    try {
      const client = new WebSocket(`ws://127.0.0.1:${port}`);
      await once(client, 'open');
      const [socket] = await accepted;
      skipSecondReceiverEnd(socket);
      const receiver = (socket as unknown as { _receiver?: Writable })._receiver;
      assert.ok(receiver instanceof Writable, 'ws keeps its receiver in _receiver');
      assert.equal(receiver.end, endUnlessFinished);
      client.terminate();
    } finally {
      server.close();
    }
  });

  it('leaves the close of a connection whose peer sent FIN as it was', async () => {
    const { server, port, accepted } = await listening();
    try {
      // A raw TCP client that upgrades and then ends: the FIN path, where ws ends twice.
      const tcp = connect(port, '127.0.0.1');
      tcp.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      );
      tcp.on('data', () => undefined);
      const [socket] = await accepted;
      skipSecondReceiverEnd(socket);
      const receiver = (socket as unknown as { _receiver: Writable })._receiver;
      // Whether the receiver had finished at each end() call: ws's second call is the one skipped.
      const finishedAtEnd: boolean[] = [];
      const guarded = receiver.end;
      receiver.end = function (this: Writable, ...args: unknown[]) {
        finishedAtEnd.push(this.writableFinished);
        return (guarded as (...a: unknown[]) => Writable).apply(this, args);
      };
      const closed = once(socket, 'close') as Promise<[number, Buffer]>;
      tcp.end();
      const [code, reason] = await closed;
      assert.equal(code, 1006);
      assert.equal(reason.length, 0);
      assert.equal(receiver.writableFinished, true);
      assert.deepEqual(finishedAtEnd, [false, true]);
      assert.equal(socket.readyState, WebSocket.CLOSED);
    } finally {
      server.close();
    }
  });
});
