import { JwtService } from '@nestjs/jwt';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  hs256Token,
  leakedTokens,
  nowSeconds,
  rs256Token,
  tryUpgrade,
  unsignedToken,
} from './support/jwt-craft.js';
import { startTestApp, TEST_SECRET, type TestApp } from './support/test-app.js';
import { TestClient, type CloseInfo } from './support/test-client.js';

/** Connects, expects a completed handshake then a close without `connection.established`. */
async function expectRefused(
  url: string,
  token: string | undefined,
  options: Parameters<typeof TestClient.connect>[2] = {},
): Promise<CloseInfo> {
  const client = TestClient.connect(url, token, options);
  try {
    const info = await client.waitClose();
    assert.equal(client.ofType('connection.established').length, 0, 'must not be established');
    return info;
  } finally {
    client.close();
  }
}

/** Connects and expects `connection.established`; returns its user_id. */
async function expectAccepted(
  url: string,
  token: string | undefined,
  options: Parameters<typeof TestClient.connect>[2] = {},
): Promise<string> {
  const client = await TestClient.open(url, token, options);
  try {
    const pong = await client.request({ type: 'ping', data: { pingId: 'p' } });
    assert.equal(pong.type, 'pong');
    return client.received[0]!.data.user_id;
  } finally {
    client.close();
  }
}

const UNAUTHORIZED = { code: 4001, reason: 'Unauthorized' };
const TOKEN_EXPIRED = { code: 4001, reason: 'Token expired' };
const FORBIDDEN_ORIGIN = { code: 4003, reason: 'Forbidden origin' };

describe('auth: token sources and verification (HS256)', () => {
  let server: TestApp;
  const used = new Set<string>();
  const remember = (token: string): string => {
    used.add(token);
    return token;
  };
  before(async () => {
    server = await startTestApp();
  });
  after(() => server.close());

  it('accepts a token in the Authorization header', async () => {
    const token = remember(server.token('header-user'));
    assert.equal(await expectAccepted(server.wsUrl, token), 'header-user');
  });

  it('accepts a token in Sec-WebSocket-Protocol "bearer, <jwt>", selects bearer and never echoes the token', async () => {
    const token = remember(server.token('protocol-user'));
    const client = TestClient.connect(server.wsUrl, undefined, { protocols: ['bearer', token] });
    const answered = new Promise<string | undefined>((resolve) =>
      client.socket.once('upgrade', (response) =>
        resolve(response.headers['sec-websocket-protocol'] as string | undefined),
      ),
    );
    try {
      const first = await client.next();
      assert.equal(first.type, 'connection.established');
      assert.equal(first.data.user_id, 'protocol-user');
      assert.equal(await answered, 'bearer');
      assert.equal(client.socket.protocol, 'bearer');
    } finally {
      client.close();
    }
  });

  it('accepts a token in the ?token= query parameter', async () => {
    const token = remember(server.token('query-user'));
    assert.equal(await expectAccepted(`${server.wsUrl}?token=${token}`, undefined), 'query-user');
  });

  it('accepts a token in the /ws/<token> path segment', async () => {
    const token = remember(server.token('path-user'));
    assert.equal(await expectAccepted(`${server.wsUrl}/${token}`, undefined), 'path-user');
  });

  it('refuses with 4001 an invalid Authorization token even when the subprotocol, query and path carry valid ones', async () => {
    const valid = remember(server.token('lower'));
    const info = await expectRefused(`${server.wsUrl}/${valid}?token=${valid}`, 'not-a-jwt', {
      protocols: ['bearer', valid],
    });
    assert.deepEqual(info, UNAUTHORIZED);
  });

  it('refuses with 4001 a non-Bearer Authorization header even when the query has a valid token', async () => {
    const valid = remember(server.token('lower'));
    const info = await expectRefused(`${server.wsUrl}?token=${valid}`, undefined, {
      headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    });
    assert.deepEqual(info, UNAUTHORIZED);
  });

  it('refuses with 4001 an invalid subprotocol token even when the query and path carry valid ones', async () => {
    const valid = remember(server.token('lower'));
    const info = await expectRefused(`${server.wsUrl}/${valid}?token=${valid}`, undefined, {
      protocols: ['bearer', 'garbage.token.value'],
    });
    assert.deepEqual(info, UNAUTHORIZED);
  });

  it('refuses with 4001 an expired query token even when the path carries a valid one', async () => {
    const valid = remember(server.token('lower'));
    const expired = remember(server.token('lower', {}, { expiresIn: -60 }));
    const info = await expectRefused(`${server.wsUrl}/${valid}?token=${expired}`, undefined);
    assert.deepEqual(info, TOKEN_EXPIRED);
  });

  it('refuses with 4001 an empty ?token= even when the path carries a valid one', async () => {
    const valid = remember(server.token('lower'));
    const info = await expectRefused(`${server.wsUrl}/${valid}?token=`, undefined);
    assert.deepEqual(info, UNAUTHORIZED);
  });

  it('closes with 4001 "Unauthorized" when no token is given', async () => {
    assert.deepEqual(await expectRefused(server.wsUrl, undefined), UNAUTHORIZED);
  });

  it('closes with 4001 "Unauthorized" when the token is garbage', async () => {
    const garbage = remember(`garbage-${randomUUID()}`);
    assert.deepEqual(await expectRefused(server.wsUrl, garbage), UNAUTHORIZED);
  });

  it('closes with 4001 "Unauthorized" when the token is signed with another secret', async () => {
    const other = new JwtService({ secret: 'another-secret-0123456789-abcdefghijk' });
    const token = remember(other.sign({ sub: 'u1' }, { expiresIn: 3600 }));
    assert.deepEqual(await expectRefused(server.wsUrl, token), UNAUTHORIZED);
  });

  it('closes with 4001 "Unauthorized" when the token is unsigned (alg none)', async () => {
    const token = remember(unsignedToken({ sub: 'u1', exp: nowSeconds() + 3600 }));
    assert.equal(token.split('.').length, 3);
    assert.deepEqual(await expectRefused(server.wsUrl, token), UNAUTHORIZED);
    // the same token in the other sources
    assert.deepEqual(
      await expectRefused(`${server.wsUrl}?token=${token}`, undefined),
      UNAUTHORIZED,
    );
    assert.deepEqual(await expectRefused(`${server.wsUrl}/${token}`, undefined), UNAUTHORIZED);
  });

  it('closes with 4001 "Unauthorized" when an HS256 token has its signature stripped and alg set to none', async () => {
    const signed = server.token('u1');
    const [, payload] = signed.split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const token = remember(`${header}.${payload}.`);
    assert.deepEqual(await expectRefused(server.wsUrl, token), UNAUTHORIZED);
  });

  it('closes with 4001 "Token expired" when the token has expired', async () => {
    const token = remember(server.token('u1', {}, { expiresIn: -60 }));
    assert.deepEqual(await expectRefused(server.wsUrl, token), TOKEN_EXPIRED);
    assert.deepEqual(
      await expectRefused(server.wsUrl, undefined, { protocols: ['bearer', token] }),
      TOKEN_EXPIRED,
    );
  });

  it('closes with 4001 "Unauthorized" when nbf is in the future', async () => {
    const token = remember(hs256Token({ sub: 'u1', nbf: nowSeconds() + 600 }, TEST_SECRET));
    assert.deepEqual(await expectRefused(server.wsUrl, token), UNAUTHORIZED);
  });

  it('normalises a numeric sub to a string user_id', async () => {
    const token = remember(server.token(12345));
    assert.equal(await expectAccepted(server.wsUrl, token), '12345');
  });

  it('closes with 4001 "Unauthorized" when the token has no sub', async () => {
    const token = remember(hs256Token({ exp: nowSeconds() + 3600 }, TEST_SECRET));
    assert.deepEqual(await expectRefused(server.wsUrl, token), UNAUTHORIZED);
    const empty = remember(hs256Token({ sub: '', exp: nowSeconds() + 3600 }, TEST_SECRET));
    assert.deepEqual(await expectRefused(server.wsUrl, empty), UNAUTHORIZED);
  });

  it('accepts a sub the service can reach, and closes with 4001 one it could not', async () => {
    // RealtimeService and the admin API refuse such user ids: they must not connect either.
    for (const sub of ['u'.repeat(256), '\u{1F600}'.repeat(128), 'Zoë 42']) {
      const token = remember(hs256Token({ sub, exp: nowSeconds() + 3600 }, TEST_SECRET));
      assert.equal(await expectAccepted(server.wsUrl, token), sub);
    }
    for (const sub of ['u'.repeat(257), 'a\u0000b', 'line\nbreak', 'a\u007f', 'lone\ud800']) {
      const token = remember(hs256Token({ sub, exp: nowSeconds() + 3600 }, TEST_SECRET));
      assert.deepEqual(await expectRefused(server.wsUrl, token), UNAUTHORIZED, JSON.stringify(sub));
    }
  });

  it('refuses an unknown upgrade path with 404 instead of hanging', async () => {
    const root = server.wsUrl.replace(/\/ws$/, '');
    const token = server.token('u1');
    for (const path of ['/other', '/wsx', '/ws/a/b']) {
      const outcome = await tryUpgrade(`${root}${path}`, { authorization: `Bearer ${token}` });
      assert.equal(outcome.kind, 'refused', path);
      assert.equal(outcome.kind === 'refused' && outcome.status, 404, path);
    }
  });

  it('never writes a token to the logs (header, subprotocol, query, path; valid or not)', async () => {
    const valid = remember(server.token('log-user'));
    const expired = remember(server.token('log-user', {}, { expiresIn: -60 }));
    const forged = remember(hs256Token({ sub: 'log-user' }, 'wrong-secret-0123456789'));
    await expectAccepted(`${server.wsUrl}?token=${valid}`, undefined);
    await expectAccepted(`${server.wsUrl}/${valid}`, undefined);
    await expectRefused(`${server.wsUrl}?token=${expired}`, undefined);
    await expectRefused(`${server.wsUrl}/${expired}`, undefined);
    await expectRefused(`${server.wsUrl}?token=${forged}`, undefined);
    await expectRefused(`${server.wsUrl}/${forged}`, undefined);
    await expectRefused(server.wsUrl, undefined, { protocols: ['bearer', forged] });
    await expectRefused(server.wsUrl, forged);
    assert.ok(server.logger.lines.length > 0, 'the connections were logged');
    assert.deepEqual(leakedTokens(server.logger.lines, used), []);
  });
});

describe('auth: issuer and audience', () => {
  let server: TestApp;
  const used = new Set<string>();
  const sign = (claims: Record<string, unknown>): string => {
    const token = hs256Token({ sub: 'u1', exp: nowSeconds() + 3600, ...claims }, TEST_SECRET);
    used.add(token);
    return token;
  };
  before(async () => {
    server = await startTestApp({
      realtime: {
        jwt: { secret: TEST_SECRET, issuer: 'https://issuer.test', audience: 'realtime-api' },
      },
    });
  });
  after(() => server.close());

  it('accepts a token with the configured iss and aud', async () => {
    const token = sign({ iss: 'https://issuer.test', aud: 'realtime-api' });
    assert.equal(await expectAccepted(server.wsUrl, token), 'u1');
  });

  it('closes with 4001 "Unauthorized" when iss is wrong or missing', async () => {
    const wrong = sign({ iss: 'https://evil.test', aud: 'realtime-api' });
    assert.deepEqual(await expectRefused(server.wsUrl, wrong), UNAUTHORIZED);
    const missing = sign({ aud: 'realtime-api' });
    assert.deepEqual(await expectRefused(server.wsUrl, missing), UNAUTHORIZED);
  });

  it('closes with 4001 "Unauthorized" when aud is wrong or missing', async () => {
    const wrong = sign({ iss: 'https://issuer.test', aud: 'other-api' });
    assert.deepEqual(await expectRefused(server.wsUrl, wrong), UNAUTHORIZED);
    const missing = sign({ iss: 'https://issuer.test' });
    assert.deepEqual(await expectRefused(server.wsUrl, missing), UNAUTHORIZED);
  });

  it('never writes these tokens to the logs', () => {
    assert.equal(used.size, 5);
    assert.deepEqual(leakedTokens(server.logger.lines, used), []);
  });
});

describe('auth: RS256 with a public key', () => {
  let server: TestApp;
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const used = new Set<string>();
  const remember = (token: string): string => {
    used.add(token);
    return token;
  };
  before(async () => {
    server = await startTestApp({ realtime: { jwt: { publicKey } } });
  });
  after(() => server.close());

  it('accepts an RS256 token signed with the matching private key', async () => {
    const token = remember(rs256Token({ sub: 'rs-user', exp: nowSeconds() + 3600 }, privateKey));
    assert.equal(await expectAccepted(server.wsUrl, token), 'rs-user');
  });

  it('closes with 4001 "Unauthorized" when an HS256 token is signed with the public key PEM as secret', async () => {
    const token = remember(hs256Token({ sub: 'attacker', exp: nowSeconds() + 3600 }, publicKey));
    assert.deepEqual(await expectRefused(server.wsUrl, token), UNAUTHORIZED);
  });

  it('closes with 4001 "Unauthorized" when an RS256 token is signed by another key', async () => {
    const other = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const token = remember(rs256Token({ sub: 'u1', exp: nowSeconds() + 3600 }, other.privateKey));
    assert.deepEqual(await expectRefused(server.wsUrl, token), UNAUTHORIZED);
  });

  it('closes with 4001 "Unauthorized" when an RS256-configured server gets an unsigned token', async () => {
    const token = remember(unsignedToken({ sub: 'u1', exp: nowSeconds() + 3600 }));
    assert.deepEqual(await expectRefused(server.wsUrl, token), UNAUTHORIZED);
  });

  it('never writes these tokens to the logs', () => {
    assert.equal(used.size, 4);
    assert.deepEqual(leakedTokens(server.logger.lines, used), []);
  });
});

describe('auth: origin allow-list', () => {
  let server: TestApp;
  before(async () => {
    server = await startTestApp({
      realtime: { jwt: { secret: TEST_SECRET }, allowedOrigins: ['http://good.test:8080'] },
    });
  });
  after(() => server.close());

  it('accepts the exact allowed origin', async () => {
    const token = server.token('o1');
    assert.equal(
      await expectAccepted(server.wsUrl, token, { origin: 'http://good.test:8080' }),
      'o1',
    );
  });

  it('accepts a request without an Origin header', async () => {
    assert.equal(await expectAccepted(server.wsUrl, server.token('o2')), 'o2');
  });

  for (const [what, origin] of [
    ['another origin', 'http://evil.test:8080'],
    ['a prefix trick', 'http://good.test:8080.evil.com'],
    ['a suffix trick', 'http://evilgood.test:8080'],
    ['a subdomain trick', 'http://good.test.evil.com:8080'],
    ['a different port', 'http://good.test:8081'],
    ['no port', 'http://good.test'],
    ['a different scheme', 'https://good.test:8080'],
    ['the string "null"', 'null'],
  ] as const) {
    it(`closes with 4003 "Forbidden origin" for ${what} (${origin})`, async () => {
      const info = await expectRefused(server.wsUrl, server.token('o3'), { origin });
      assert.deepEqual(info, FORBIDDEN_ORIGIN);
    });
  }

  it('checks the origin before the token: a bad origin with a bad token closes with 4003', async () => {
    const info = await expectRefused(server.wsUrl, 'garbage', { origin: 'http://evil.test' });
    assert.deepEqual(info, FORBIDDEN_ORIGIN);
    const none = await expectRefused(server.wsUrl, undefined, { origin: 'http://evil.test' });
    assert.deepEqual(none, FORBIDDEN_ORIGIN);
  });

  it('checks the token after an allowed origin: a good origin with a bad token closes with 4001', async () => {
    const info = await expectRefused(server.wsUrl, 'garbage', { origin: 'http://good.test:8080' });
    assert.deepEqual(info, UNAUTHORIZED);
  });
});
