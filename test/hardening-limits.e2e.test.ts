import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { ConnectionRegistry, RealtimeService } from '../src/realtime/index.js';
import { rawUpgrade, type RawUpgrade } from './support/raw-upgrade.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { eventually, TestClient } from './support/test-client.js';
import { assertPingWorks, assertServesFreshClient, sleep } from './support/wire.js';

const PER_SECOND = 10;
const OVER = 5;
/** Past the limiter's one-second window, with slack for timers on a busy machine. */
const WINDOW_PASSED_MS = 1200;

/** Fires `count` upgrades at once from 127.0.0.1 and waits for every answer head. */
async function upgradeBurst(server: TestApp, tokenOf: (i: number) => string, count: number) {
  const started = performance.now();
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) => rawUpgrade(server.port, '/ws', tokenOf(i))),
  );
  return { answers, elapsedMs: Math.round(performance.now() - started) };
}

function statuses(answers: RawUpgrade[]): number[] {
  return answers.map((a) => a.status).sort();
}

/** Resolves when the server ended the socket; reading resumes so that its end is seen. */
async function closedByServer(answer: RawUpgrade, timeoutMs = 3000): Promise<void> {
  answer.socket.resume();
  if (answer.socket.destroyed) return;
  await once(answer.socket, 'close', { signal: AbortSignal.timeout(timeoutMs) });
}

describe('hardening: maxConnectionsPerIpPerSecond (429 before the token check)', () => {
  let server: TestApp;
  let burst = 0;
  const sockets: RawUpgrade[] = [];
  before(async () => {
    server = await startTestApp({
      realtime: { maxConnectionsPerIpPerSecond: PER_SECOND, closeGraceMs: 500 },
    });
  });
  after(async () => {
    for (const answer of sockets) answer.socket.destroy();
    await server.close();
  });

  it(`admits ${PER_SECOND} of a burst of ${PER_SECOND + OVER} upgrades and answers the rest 429 with Retry-After, then admits again after the window`, async () => {
    const { answers, elapsedMs } = await upgradeBurst(
      server,
      (i) => server.token(`burst-${++burst}-${i}`),
      PER_SECOND + OVER,
    );
    sockets.push(...answers);
    const detail = `statuses ${statuses(answers).join(',')} in ${elapsedMs} ms`;
    assert.equal(answers.filter((a) => a.status === 101).length, PER_SECOND, detail);
    const refused = answers.filter((a) => a.status === 429);
    assert.equal(refused.length, OVER, detail);
    for (const answer of refused) {
      assert.equal(answer.headers['retry-after'], '1');
      assert.equal(answer.headers['connection'], 'close');
      await closedByServer(answer);
    }
    assert.equal(server.app.get(ConnectionRegistry).size, PER_SECOND);
    console.log(`[hardening] upgrade burst: ${detail}`);

    await sleep(WINDOW_PASSED_MS);
    await assertServesFreshClient(server, 'after-window');
  });

  it('refuses over the rate before verifying the token: only the admitted ones are closed 4001', async () => {
    await sleep(WINDOW_PASSED_MS); // the previous case's fresh client opened a window
    const refusalsBefore = tokenRefusals(server);
    const { answers } = await upgradeBurst(server, () => 'not-a-jwt', PER_SECOND + OVER);
    sockets.push(...answers);
    assert.deepEqual(statuses(answers), [
      ...Array<number>(PER_SECOND).fill(101),
      ...Array<number>(OVER).fill(429),
    ]);
    await eventually(
      () => tokenRefusals(server) - refusalsBefore === PER_SECOND,
      3000,
      `${PER_SECOND} token refusals logged`,
    );
    await sleep(200); // a late sixth refusal would show up here
    assert.equal(tokenRefusals(server) - refusalsBefore, PER_SECOND);

    await sleep(WINDOW_PASSED_MS);
    await assertServesFreshClient(server, 'after-bad-tokens');
  });
});

/** Count of logged refusals for a missing, malformed or invalid token. */
function tokenRefusals(server: TestApp): number {
  return server.logger.lines.filter(
    (line) => line.includes('connection.refused') && line.includes('"code":4001'),
  ).length;
}

describe('hardening: connection floods with the upgrade rate limit off', () => {
  const CAP = 50;
  const FLOOD = 200;
  let server: TestApp;
  const clients: TestClient[] = [];
  before(async () => {
    server = await startTestApp({ realtime: { maxTotalConnections: CAP } });
  });
  after(async () => {
    for (const client of clients) client.close();
    await server.close();
  });

  it(`refuses no upgrade of a burst of ${PER_SECOND + OVER} when maxConnectionsPerIpPerSecond is 0`, async () => {
    const { answers } = await upgradeBurst(
      server,
      (i) => server.token(`off-${i}`),
      PER_SECOND + OVER,
    );
    try {
      assert.deepEqual(statuses(answers), Array<number>(PER_SECOND + OVER).fill(101));
    } finally {
      for (const answer of answers) answer.socket.destroy();
    }
    const registry = server.app.get(ConnectionRegistry);
    await eventually(() => registry.size === 0, 3000, 'the burst is forgotten');
    await assertServesFreshClient(server, 'off-fresh');
  });

  it(`admits exactly maxTotalConnections (${CAP}) of ${FLOOD} concurrent connects and refuses the rest 1013`, async () => {
    const registry = server.app.get(ConnectionRegistry);
    await eventually(() => registry.size === 0, 3000, 'an empty server');
    let peak = 0;
    // Sampled as each connection is admitted: the moment the count could pass the cap.
    const watch = server.app
      .get(RealtimeService)
      .connectionOpened$.subscribe(() => (peak = Math.max(peak, registry.size)));
    const flood = Array.from({ length: FLOOD }, (_, i) => {
      const client = TestClient.connect(server.wsUrl, server.token(`flood-${i}`));
      clients.push(client);
      return client;
    });
    const started = performance.now();
    const outcomes = await Promise.all(
      flood.map((client) =>
        client.next('connection.established', 20_000).then(
          () => 'admitted' as const,
          () => client.waitClose(1000).then((info) => info.code),
        ),
      ),
    ).finally(() => watch.unsubscribe());
    const elapsedMs = Math.round(performance.now() - started);
    const admitted = flood.filter((_, i) => outcomes[i] === 'admitted');
    const refused = flood.filter((_, i) => outcomes[i] === 1013);
    assert.equal(admitted.length, CAP, `outcomes: ${JSON.stringify(countBy(outcomes))}`);
    assert.equal(refused.length, FLOOD - CAP);
    for (const client of refused) {
      assert.deepEqual(
        client.received.map((m) => [m.type, m.data.code]),
        [['error', 'CONNECTION_LIMIT_EXCEEDED']],
      );
    }
    assert.ok(peak <= CAP, `at most ${CAP} connections at once, saw ${peak}`);
    for (const client of admitted.slice(0, 5)) await assertPingWorks(client);
    console.log(`[hardening] flood of ${FLOOD} with cap ${CAP}: answered in ${elapsedMs} ms`);

    for (const client of admitted) client.close();
    await eventually(() => registry.size === 0, 5000, 'the flood is forgotten');
    await assertServesFreshClient(server, 'after-flood');
  });
});

function countBy(values: readonly unknown[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1;
  return counts;
}
