import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '../src/protocol/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TestClient } from './support/test-client.js';
import { assertAllEnvelopes, assertPingWorks } from './support/wire.js';

/**
 * Hostile message content against the real server (issue 6): prototype keys, half characters,
 * huge arrays, and a property-based fuzz of frames and envelopes. After each case the server must
 * still serve a fresh client.
 */

/** Close codes a client may get for a bad frame or message; anything else is a server fault. */
const PROTOCOL_CLOSES = new Set([1002, 1007, 1008, 1009]);
const WAIT_MS = 5000;

describe('hostile message content', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({
      // Room for the oversize-array case; the rate limit must not be what answers here.
      realtime: { maxMessageSize: 1024 * 1024, rateLimitMessages: 100_000 },
    });
  });
  after(() => server.close());

  function open(): Promise<TestClient> {
    return TestClient.open(server.wsUrl, server.token(`hostile-${++users}`));
  }

  async function assertFreshClientServed(): Promise<void> {
    const fresh = await open();
    try {
      await assertPingWorks(fresh, 'fresh');
    } finally {
      fresh.close();
    }
  }

  it('lets no __proto__, constructor or prototype key pollute Object.prototype', async () => {
    const client = await open();
    try {
      const frames = [
        '{"type":"ping","id":"p1","__proto__":{"polluted":1},"data":{"pingId":"a","__proto__":{"polluted":2},"constructor":{"prototype":{"polluted":3}}}}',
        '{"type":"subscribe","id":"s1","data":{"events":["upload.progress"],"__proto__":{"events":["system.maintenance"],"polluted":4}}}',
        '{"type":"upload.cancel","id":"u1","data":{"upload_id":"u-1","__proto__":{"admin":true,"polluted":5}}}',
        '{"type":"unsubscribe","id":"s2","data":{"events":["upload.progress"],"constructor":{"prototype":{"polluted":6}}}}',
      ];
      for (const frame of frames) client.send(frame);
      const pong = await client.next('pong', WAIT_MS);
      assert.equal(pong.in_reply_to, 'p1');
      const ack = await client.next('subscription.acknowledged', WAIT_MS);
      // Only the real key counts: the __proto__ key is not a second list of events.
      assert.deepEqual(ack.data.events, ['upload.progress']);
      await client.next('upload.cancel.acknowledged', WAIT_MS);
      await client.next('unsubscription.acknowledged', WAIT_MS);
      await assertPingWorks(client);

      const probe: Record<string, unknown> = {};
      assert.equal(probe.polluted, undefined);
      assert.equal(probe.admin, undefined);
      assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);
      assert.equal(Object.hasOwn(Object.prototype, 'admin'), false);
      assertAllEnvelopes(client);
    } finally {
      client.close();
    }
    await assertFreshClientServed();
  });

  it('answers types named after Object.prototype members as unknown types', async () => {
    const client = await open();
    try {
      const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
      for (const type of names) {
        const reply = await client.request({ type, id: `t-${type}` }, WAIT_MS);
        assert.equal(reply.type, 'error', type);
        assert.equal(reply.data.code, 'INVALID_MESSAGE_TYPE', type);
      }
      assertAllEnvelopes(client);
    } finally {
      client.close();
    }
    await assertFreshClientServed();
  });

  it('refuses ids with lone surrogates, and echoes well-formed ones', async () => {
    const client = await open();
    try {
      for (const escaped of ['\\ud800', 'x\\udc00', '\\udbff\\u0041']) {
        client.send(`{"type":"ping","id":"${escaped}","data":{}}`);
        const error = await client.next('error', WAIT_MS);
        assert.equal(error.data.code, 'INVALID_MESSAGE_FORMAT');
        assert.equal(error.in_reply_to, undefined, 'a broken id is not echoed');
      }
      client.send('{"type":"ping","id":"\\ud83d\\ude00","data":{}}');
      assert.equal((await client.next('pong', WAIT_MS)).in_reply_to, '😀');
      // Elsewhere a half character is just data: answered, and written as valid JSON.
      client.send('{"type":"ping","id":"lone-data","data":{"pingId":"\\ud800"}}');
      const pong = await client.next('pong', WAIT_MS);
      assert.equal(pong.data.pingId, '\ud800');
      assertAllEnvelopes(client);
      await assertPingWorks(client);
    } finally {
      client.close();
    }
    await assertFreshClientServed();
  });

  it('refuses a subscribe with 100,000 names as a whole and keeps the connection', async () => {
    const client = await open();
    try {
      const events = Array.from({ length: 100_000 }, (_, i) => `e${i}`);
      const reply = await client.request({ type: 'subscribe', data: { events } }, WAIT_MS);
      assert.equal(reply.type, 'error');
      assert.equal(reply.data.code, 'INVALID_MESSAGE_FORMAT');
      const huge = Array.from({ length: 100_000 }, () => 0);
      const pong = await client.request({ type: 'ping', data: { pingId: 'wide', huge } }, WAIT_MS);
      assert.equal(pong.type, 'pong');
      assertAllEnvelopes(client);
    } finally {
      client.close();
    }
    await assertFreshClientServed();
  });
});

describe('fuzz: arbitrary frames and envelopes (fast-check)', () => {
  let server: TestApp;
  let users = 0;
  before(async () => {
    server = await startTestApp({ realtime: { maxMessageSize: 4096, rateLimitMessages: 100_000 } });
  });
  after(() => server.close());

  const KNOWN_TYPES = [
    'ping',
    'pong',
    'heartbeat',
    'subscribe',
    'unsubscribe',
    'upload.cancel',
    'resume',
  ];
  const awkwardKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'events', 'toString');
  const value = fc.jsonValue({ maxDepth: 4 });
  /** Half characters, which JSON.stringify writes as \\udxxx escapes. */
  const loneSurrogates = fc.string({
    unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
    minLength: 1,
    maxLength: 3,
  });
  const data = fc.oneof(
    fc.dictionary(fc.oneof(fc.string(), awkwardKey), value, { maxKeys: 6 }),
    fc.record({ events: fc.array(fc.oneof(fc.string(), value), { maxLength: 60 }) }),
    fc.record({ upload_id: fc.oneof(fc.string(), value), pingId: fc.oneof(fc.string(), value) }),
    value,
  );
  const envelope = fc
    .record(
      {
        type: fc.oneof(fc.constantFrom(...KNOWN_TYPES), fc.string(), value),
        data,
        id: fc.oneof(
          fc.string({ maxLength: 140 }),
          fc.string({ unit: 'binary' }),
          loneSurrogates,
          value,
        ),
        timestamp: fc.oneof(fc.string(), value),
      },
      { requiredKeys: [] },
    )
    .map((message) => JSON.stringify(message));
  const frame = fc.oneof(
    { weight: 6, arbitrary: envelope.map((text) => ({ text })) },
    { weight: 2, arbitrary: fc.string({ maxLength: 200 }).map((text) => ({ text })) },
    { weight: 1, arbitrary: fc.jsonValue().map((json) => ({ text: JSON.stringify(json) ?? '' })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ bytes })) },
  );

  it('never crashes, answers only with envelopes or protocol closes, and keeps serving', async () => {
    let closedRuns = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 8 }), async (frames) => {
        const client = await TestClient.open(server.wsUrl, server.token(`fuzz-${++users}`));
        try {
          for (const item of frames) {
            if ('bytes' in item) client.socket.send(Buffer.from(item.bytes), { binary: true });
            else client.socket.send(item.text);
          }
          // A ping after the batch: answered in order unless the batch closed the connection.
          client.send({ type: 'ping', id: 'fuzz-end', data: { pingId: 'end' } });
          const deadline = Date.now() + WAIT_MS;
          while (!client.closeInfo && !client.received.some((m) => m.in_reply_to === 'fuzz-end')) {
            assert.ok(Date.now() < deadline, `no answer to the batch ${JSON.stringify(frames)}`);
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
          if (client.closeInfo) {
            closedRuns++;
            assert.ok(
              PROTOCOL_CLOSES.has(client.closeInfo.code),
              `close ${client.closeInfo.code} for ${JSON.stringify(frames)}`,
            );
          }
          assertAllEnvelopes(client);
          for (const message of client.received) {
            if (message.type === 'error') {
              assert.equal(typeof message.data.code, 'string');
              assert.notEqual(message.data.code, 'INTERNAL_ERROR', JSON.stringify(frames));
            }
          }
        } finally {
          client.close();
        }
      }),
      {
        numRuns: 300,
        interruptAfterTimeLimit: 60_000,
        // FUZZ_SEED=<seed printed by a failure> replays that failure.
        ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
      },
    );
    // Invalid UTF-8 in a text frame is the one thing that closes (1007); most runs stay open.
    assert.ok(closedRuns < 300, `closed runs ${closedRuns}`);
    const fresh = await TestClient.open(server.wsUrl, server.token('after-fuzz'));
    try {
      await assertPingWorks(fresh, 'after-fuzz');
    } finally {
      fresh.close();
    }
  });
});

/** An admin API answer, as far as these tests read it. */
interface AdminAnswer {
  status: number;
  body: { status?: string; error?: { code?: number; message?: string } };
}

describe('hostile admin requests', () => {
  let server: TestApp;
  before(async () => {
    server = await startTestApp();
  });
  after(() => server.close());

  async function raw(
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<AdminAnswer> {
    const response = await fetch(`${server.httpUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${server.adminToken()}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body,
      signal: AbortSignal.timeout(WAIT_MS),
    });
    return { status: response.status, body: (await response.json()) as AdminAnswer['body'] };
  }

  /** The admin error shape with this status, whatever refused the request. */
  function assertAdminError(response: AdminAnswer, status: number, what: string): void {
    assert.equal(response.status, status, what);
    assert.deepEqual(Object.keys(response.body).sort(), ['error', 'status'], what);
    assert.equal(response.body.status, 'error', what);
    assert.equal(response.body.error?.code, status, what);
    assert.equal(typeof response.body.error?.message, 'string', what);
    assert.doesNotMatch(JSON.stringify(response.body), /node_modules|\n\s*at /, what);
  }

  /** A broadcast body nested exactly `depth` levels deep (the body itself is level 1). */
  function nested(depth: number): string {
    return `{"type":"x","data":{"a":${'['.repeat(depth - 2)}${']'.repeat(depth - 2)}}}`;
  }

  it('answers undecodable connection ids with 400 in the admin shape', async () => {
    // Bad escapes, invalid UTF-8, a truncated sequence and an encoded lone surrogate.
    for (const id of ['%', '%zz', '%FF', '%C3%28', '%E0%A4%A', '%ED%A0%80']) {
      for (const method of ['GET', 'DELETE']) {
        assertAdminError(await raw(method, `/ws/connections/${id}`), 400, `${method} ${id}`);
      }
    }
  });

  it('answers bodies the JSON parser refuses in the admin shape, with its status', async () => {
    const cases: Array<[string, string, Record<string, string>, number]> = [
      ['null', 'null', {}, 400],
      ['true', 'true', {}, 400],
      ['a string', '"x"', {}, 400],
      ['a number', '1', {}, 400],
      ['a lone bracket', '[', {}, 400],
      ['a cut object', '{"type":', {}, 400],
      ['gzip that is not', '{}', { 'content-encoding': 'gzip' }, 400],
      ['an unknown encoding', '{}', { 'content-encoding': 'x-unknown' }, 415],
      ['an unknown charset', '{}', { 'content-type': 'application/json; charset=latin-9' }, 415],
      ['over the size limit', `{"a":"${'x'.repeat(200_000)}"}`, {}, 413],
    ];
    for (const [what, body, headers, status] of cases) {
      assertAdminError(await raw('POST', '/ws/broadcast', body, headers), status, what);
    }
  });

  it('answers a body nested past the protocol depth with 400, not a stack overflow', async () => {
    assert.equal(exceedsJsonDepth(nested(MAX_JSON_DEPTH)), false);
    assert.equal(exceedsJsonDepth(nested(MAX_JSON_DEPTH + 1)), true);
    const deepest = await raw('POST', '/ws/broadcast', nested(MAX_JSON_DEPTH));
    assert.equal(deepest.status, 200, JSON.stringify(deepest.body));
    for (const depth of [MAX_JSON_DEPTH + 1, 2_000, 40_000]) {
      const response = await raw('POST', '/ws/broadcast', nested(depth));
      assertAdminError(response, 400, `depth ${depth}`);
      assert.match(response.body.error?.message ?? '', /nested deeper than 32 levels/);
    }
  });

  it('keeps serving the admin API', async () => {
    const stats = await raw('GET', '/ws/stats');
    assert.equal(stats.status, 200);
    assert.equal(stats.body.status, 'success');
  });
});
