import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RealtimeService } from '../src/realtime/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, type ReceivedMessage, TestClient } from './support/test-client.js';
import { assertAllEnvelopes, sleep } from './support/wire.js';

/** PROTOCOL.md section 9 on the wire: positions on sends, `resume`, `resume.result`. */

const WAIT_MS = 5000;

function position(message: ReceivedMessage): { stream: string; offset: string; epoch: string } {
  assert.equal(typeof message.stream, 'string', `stream on ${message.type}`);
  assert.equal(typeof message.offset, 'string', `offset on ${message.type}`);
  assert.equal(typeof message.epoch, 'string', `epoch on ${message.type}`);
  return {
    stream: message.stream as string,
    offset: message.offset as string,
    epoch: message.epoch as string,
  };
}

describe('recovery: stream positions and resume (PROTOCOL 9)', () => {
  let server: TestApp;
  let service: RealtimeService;
  let users = 0;
  before(async () => {
    server = await startTestApp({
      realtime: { history: { maxMessages: 20 }, maxConnectionsPerUser: 5 },
    });
    service = server.app.get(RealtimeService);
  });
  after(() => server.close());

  const nextUser = () => `recover-${++users}`;
  const open = (userId: string) => TestClient.open(server.wsUrl, server.token(userId));

  /** Receives `count` messages of `type`, in arrival order. */
  async function take(client: TestClient, type: string, count: number): Promise<ReceivedMessage[]> {
    const taken: ReceivedMessage[] = [];
    for (let i = 0; i < count; i++) taken.push(await client.next(type, WAIT_MS));
    return taken;
  }

  /** Connects `userId`, takes the `type` message that `send` sends, and goes away again. */
  async function positionThenLeave(
    userId: string,
    type: string,
    send: () => Promise<unknown>,
    setup: (client: TestClient) => Promise<unknown> = async () => undefined,
  ) {
    const first = await open(userId);
    await setup(first);
    await send();
    const last = position(await first.next(type));
    first.close();
    await eventually(() => first.closeInfo !== undefined);
    await sleep(50);
    return last;
  }

  it('puts stream, offset and epoch on sends, increasing per stream, and none on replies', async () => {
    const userId = nextUser();
    const client = await open(userId);
    try {
      await service.sendToUser(userId, 'n.user', { n: 1 });
      await service.sendToUser(userId, 'n.user', { n: 2 });
      const [first, second] = (await take(client, 'n.user', 2)).map(position);
      assert.equal(first!.stream, `user:${userId}`);
      assert.equal(second!.stream, first!.stream);
      assert.equal(second!.epoch, first!.epoch);
      assert.ok(Number(second!.offset) > Number(first!.offset));

      const pong = await client.request({ type: 'ping', data: {} });
      assert.equal(pong.stream, undefined);
      assert.equal(pong.offset, undefined);
      // A send to one connection has no stream: a new connection could not ask for it.
      const connectionId = client.received[0]!.data.connection_id as string;
      await service.sendToConnection(connectionId, 'n.direct', {});
      assert.equal((await client.next('n.direct')).stream, undefined);
      assertAllEnvelopes(client);
    } finally {
      client.close();
    }
  });

  it('gives each user of a multi-user send its own stream, with one message id', async () => {
    const [a, b] = [nextUser(), nextUser()];
    const [clientA, clientB] = [await open(a), await open(b)];
    try {
      await service.sendToUsers([a, b], 'n.both', {});
      const [fromA, fromB] = [await clientA.next('n.both'), await clientB.next('n.both')];
      assert.equal(position(fromA).stream, `user:${a}`);
      assert.equal(position(fromB).stream, `user:${b}`);
      assert.equal(fromA.id, fromB.id);
    } finally {
      clientA.close();
      clientB.close();
    }
  });

  it('replays nothing twice when a client resumes the same stream again (a retry)', async () => {
    const userId = nextUser();
    const last = await positionThenLeave(userId, 'n.seq', () =>
      service.sendToUser(userId, 'n.seq', { n: 1 }),
    );
    for (let n = 2; n <= 3; n++) await service.sendToUser(userId, 'n.seq', { n });

    const again = await open(userId);
    try {
      // Live before the resume: the replay stops there.
      await service.sendToUser(userId, 'n.seq', { n: 4 });
      await again.next('n.seq', WAIT_MS);
      const resume = { type: 'resume', data: { positions: [last] } };
      const first = await again.request(resume);
      assert.equal(first.data.streams[0].replayed, 2);
      await service.sendToUser(userId, 'n.seq', { n: 5 });
      const retried = await again.request(resume);
      assert.equal(retried.type, 'resume.result');
      assert.equal(retried.data.recovered, true);
      assert.equal(retried.data.streams[0].replayed, 0);
      await again.request({ type: 'ping' });
      assert.deepEqual(
        again.ofType('n.seq').map((m) => m.data.n),
        [4, 2, 3, 5],
        'each once: 2 and 3 replayed by the first resume only, 4 and 5 live',
      );
    } finally {
      again.close();
    }
  });

  it('replays what a user missed while away, in order, then says recovered', async () => {
    const userId = nextUser();
    const last = await positionThenLeave(userId, 'n.seq', () =>
      service.sendToUser(userId, 'n.seq', { n: 1 }),
    );
    for (let n = 2; n <= 6; n++) await service.sendToUser(userId, 'n.seq', { n });

    const again = await open(userId);
    try {
      const result = await again.request({ type: 'resume', data: { positions: [last] } });
      assert.equal(result.type, 'resume.result');
      assert.deepEqual(
        again.ofType('n.seq').map((m) => m.data.n),
        [2, 3, 4, 5, 6],
      );
      assert.equal(result.data.recovered, true);
      const [stream] = result.data.streams;
      assert.equal(stream.stream, last.stream);
      assert.equal(stream.recovered, true);
      assert.equal(stream.replayed, 5);
      assert.equal(stream.epoch, last.epoch);
      // Replayed messages carry their original ids and positions.
      const offsets = again.ofType('n.seq').map((m) => Number(position(m).offset));
      assert.deepEqual(
        offsets,
        [...offsets].sort((x, y) => x - y),
      );
      assertAllEnvelopes(again);
    } finally {
      again.close();
    }
  });

  it('never sends twice what the new connection already got live', async () => {
    const userId = nextUser();
    const last = await positionThenLeave(userId, 'n.live', () =>
      service.sendToUser(userId, 'n.live', { n: 1 }),
    );
    await service.sendToUser(userId, 'n.live', { n: 2 });
    await service.sendToUser(userId, 'n.live', { n: 3 });

    const again = await open(userId);
    try {
      // Sent after the reconnect and before the resume: live, so not in the replay.
      await service.sendToUser(userId, 'n.live', { n: 4 });
      await again.next('n.live');
      const result = await again.request({ type: 'resume', data: { positions: [last] } });
      assert.deepEqual(
        again.ofType('n.live').map((m) => m.data.n),
        [4, 2, 3],
      );
      assert.equal(result.data.streams[0].replayed, 2);
      assert.equal(result.data.recovered, true);
    } finally {
      again.close();
    }
  });

  it('replays an event stream only to a connection subscribed to it again', async () => {
    const userId = nextUser();
    const last = await positionThenLeave(
      userId,
      'review.created',
      () => service.sendReviewCreated('r-1'),
      (first) => first.request({ type: 'subscribe', data: { events: ['review.created'] } }),
    );
    assert.equal(last.stream, 'event:review.created');
    await service.sendReviewCreated('r-2');

    const again = await open(userId);
    try {
      const refused = await again.request({ type: 'resume', data: { positions: [last] } });
      assert.deepEqual(refused.data.streams[0], {
        stream: 'event:review.created',
        recovered: false,
        replayed: 0,
        reason: 'not_visible',
      });
      assert.equal(again.ofType('review.created').length, 0);

      await again.request({ type: 'subscribe', data: { events: ['review.created'] } });
      const result = await again.request({ type: 'resume', data: { positions: [last] } });
      assert.equal(result.data.recovered, true);
      assert.deepEqual(
        again.ofType('review.created').map((m) => m.data.review_id),
        ['r-2'],
      );
    } finally {
      again.close();
    }
  });

  it('replays rooms to members and broadcasts to all but the user they left out', async () => {
    const userId = nextUser();
    const first = await open(userId);
    service.joinRoom('recovery-room', { userId });
    await service.sendToRoom('recovery-room', 'n.room', { n: 1 });
    await service.broadcast('n.all', { n: 1 });
    const lastRoom = position(await first.next('n.room'));
    const lastAll = position(await first.next('n.all'));
    assert.equal(lastRoom.stream, 'room:recovery-room');
    assert.equal(lastAll.stream, 'all');
    first.close();
    await eventually(() => first.closeInfo !== undefined);
    await sleep(50);
    await service.sendToRoom('recovery-room', 'n.room', { n: 2 });
    await service.broadcast('n.all', { n: 2 }, { exceptUserId: userId });
    await service.broadcast('n.all', { n: 3 });

    const again = await open(userId);
    try {
      // Membership ended with the user's last connection; the host puts them back, as on login.
      service.joinRoom('recovery-room', { userId });
      const result = await again.request({
        type: 'resume',
        data: { positions: [lastRoom, lastAll] },
      });
      assert.equal(result.data.recovered, true, JSON.stringify(result.data));
      assert.deepEqual(
        again.ofType('n.room').map((m) => m.data.n),
        [2],
      );
      assert.deepEqual(
        again.ofType('n.all').map((m) => m.data.n),
        [3],
      );
    } finally {
      service.leaveRoom('recovery-room', { userId });
      again.close();
    }
  });

  it('replays the streams of users and rooms whose names are not plain ASCII', async () => {
    // Any sub the server accepts names a stream a client can resume: accents, spaces, a long one.
    for (const [userId, room] of [
      ['Zoë', 'café'],
      ['user 42', 'team chat'],
      ['u'.repeat(256), 'r'.repeat(200)], // the longest room name
    ] as const) {
      const first = await open(userId);
      service.joinRoom(room, { userId });
      await service.sendToUser(userId, 'n.named', { n: 1 });
      await service.sendToRoom(room, 'n.named-room', { n: 1 });
      const lastUser = position(await first.next('n.named'));
      const lastRoom = position(await first.next('n.named-room'));
      assert.equal(lastUser.stream, `user:${userId}`);
      first.close();
      await eventually(() => first.closeInfo !== undefined);
      await sleep(50);
      await service.sendToUser(userId, 'n.named', { n: 2 });

      const again = await open(userId);
      try {
        service.joinRoom(room, { userId });
        await service.sendToRoom(room, 'n.named-room', { n: 2 });
        const result = await again.request({
          type: 'resume',
          data: { positions: [lastUser, lastRoom] },
        });
        assert.equal(result.type, 'resume.result', JSON.stringify(result.data).slice(0, 200));
        assert.equal(result.data.recovered, true, JSON.stringify(result.data).slice(0, 200));
        assert.deepEqual(
          again.ofType('n.named').map((m) => m.data.n),
          [2],
        );
      } finally {
        service.leaveRoom(room, { userId });
        again.close();
      }
    }
  });

  it('says recovered: false (gap_too_old) past the history, after replaying what is left', async () => {
    const userId = nextUser();
    const last = await positionThenLeave(userId, 'n.gap', () =>
      service.sendToUser(userId, 'n.gap', { n: 0 }),
    );
    for (let n = 1; n <= 30; n++) await service.sendToUser(userId, 'n.gap', { n });

    const again = await open(userId);
    try {
      const result = await again.request({ type: 'resume', data: { positions: [last] } });
      assert.equal(result.data.recovered, false);
      assert.equal(result.data.streams[0].reason, 'gap_too_old');
      // history.maxMessages is 20: the last 20 of 30 are still there.
      assert.deepEqual(
        again.ofType('n.gap').map((m) => m.data.n),
        Array.from({ length: 20 }, (_, i) => i + 11),
      );
    } finally {
      again.close();
    }
  });

  it('says epoch_changed for an unknown epoch and replays nothing', async () => {
    const userId = nextUser();
    const client = await open(userId);
    try {
      await service.sendToUser(userId, 'n.epoch', {});
      const current = position(await client.next('n.epoch'));
      const result = await client.request({
        type: 'resume',
        data: { positions: [{ ...current, offset: '0', epoch: 'not-this-one' }] },
      });
      assert.deepEqual(result.data.streams[0], {
        stream: current.stream,
        recovered: false,
        replayed: 0,
        reason: 'epoch_changed',
        epoch: current.epoch,
        offset: current.offset,
      });
    } finally {
      client.close();
    }
  });

  it('refuses malformed positions with INVALID_MESSAGE_FORMAT', async () => {
    const client = await open(nextUser());
    try {
      for (const positions of [
        [],
        [{ stream: 'user:x', offset: 'abc', epoch: 'e' }],
        [{ stream: 'nope', offset: '1', epoch: 'e' }],
        [{ stream: 'user:', offset: '1', epoch: 'e' }],
        [{ stream: `room:${'r'.repeat(4100)}`, offset: '1', epoch: 'e' }],
        [{ stream: 'all', offset: '1' }],
        Array.from({ length: 101 }, () => ({ stream: 'all', offset: '1', epoch: 'e' })),
        'all',
      ]) {
        const reply = await client.request({ type: 'resume', data: { positions } });
        assert.equal(reply.type, 'error', JSON.stringify(positions).slice(0, 80));
        assert.equal(reply.data.code, 'INVALID_MESSAGE_FORMAT');
      }
    } finally {
      client.close();
    }
  });
});

describe('recovery: resume window, pacing, and history off', () => {
  it('says too_late after the resume window', async () => {
    const server = await startTestApp({ realtime: { history: { resumeWindowMs: 200 } } });
    try {
      const service = server.app.get(RealtimeService);
      const client = await TestClient.open(server.wsUrl, server.token('late'));
      await service.sendToUser('late', 'n.late', {});
      const last = position(await client.next('n.late'));
      await sleep(300);
      const result = await client.request({ type: 'resume', data: { positions: [last] } });
      assert.equal(result.data.streams[0].reason, 'too_late');
      client.close();
    } finally {
      await server.close();
    }
  });

  it('paces a replay larger than the send buffer instead of closing the client (4010)', async () => {
    const server = await startTestApp({
      realtime: {
        maxMessageSize: 16 * 1024,
        maxBufferedBytes: 64 * 1024,
        history: { maxMessages: 300 },
      },
    });
    try {
      const service = server.app.get(RealtimeService);
      const first = await TestClient.open(server.wsUrl, server.token('big'));
      await service.sendToUser('big', 'n.big', { n: 0 });
      const last = position(await first.next('n.big'));
      first.close();
      await eventually(() => first.closeInfo !== undefined);
      await sleep(50);
      const blob = 'x'.repeat(10_000);
      for (let n = 1; n <= 200; n++) await service.sendToUser('big', 'n.big', { n, blob });

      const again = await TestClient.open(server.wsUrl, server.token('big'));
      const result = await again.request({ type: 'resume', data: { positions: [last] } }, 15_000);
      assert.equal(result.data.recovered, true);
      assert.equal(result.data.streams[0].replayed, 200);
      assert.equal(again.closeInfo, undefined);
      assert.deepEqual(
        again.ofType('n.big').map((m) => m.data.n),
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
      again.close();
    } finally {
      await server.close();
    }
  });

  it('with history: false, sends carry no position and resume recovers nothing', async () => {
    const server = await startTestApp({ realtime: { history: false } });
    try {
      const service = server.app.get(RealtimeService);
      const client = await TestClient.open(server.wsUrl, server.token('nohistory'));
      await service.sendToUser('nohistory', 'n.plain', {});
      const message = await client.next('n.plain');
      assert.equal(message.stream, undefined);
      assert.equal(message.offset, undefined);
      const reply = await client.request({
        type: 'resume',
        data: { positions: [{ stream: 'all', offset: '1', epoch: 'e' }] },
      });
      // A section-4 type is answered: nothing recovered, so the client reloads its state.
      assert.equal(reply.type, 'resume.result');
      assert.deepEqual(reply.data, {
        recovered: false,
        streams: [{ stream: 'all', recovered: false, replayed: 0, reason: 'no_history' }],
      });
      client.close();
    } finally {
      await server.close();
    }
  });
});
