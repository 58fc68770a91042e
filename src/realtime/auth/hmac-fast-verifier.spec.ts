import assert from 'node:assert/strict';
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { describe, it, mock } from 'node:test';
import { JwtService } from '@nestjs/jwt';
import fc from 'fast-check';
import { type JwtAlgorithm, resolveRealtimeOptions } from '../realtime-options.js';
import { HmacFastVerifier } from './hmac-fast-verifier.js';
import { TokenVerifier } from './token-verifier.js';

type HsAlg = 'HS256' | 'HS384' | 'HS512';
const HS_ALGS: readonly HsAlg[] = ['HS256', 'HS384', 'HS512'];
const HASH: Record<HsAlg, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/** Both verifiers get this clock, so that a second boundary cannot pass between them. */
const NOW = 1_800_000_000;
const SECRET = 'fast-path secret \u00e9';
const OTHER_SECRET = 'another secret';
const KEY = createSecretKey(Buffer.from(SECRET, 'utf8'));
const ISSUERS = ['https://issuer.test', 'https://other.test'];
const AUDIENCES = ['realtime-api', 'admin-api', 'other-api'];

interface Config {
  algorithms: HsAlg[];
  issuer?: string | string[];
  audience?: string | string[];
  clockToleranceSeconds: number;
}

const jwt = new JwtService();

/** One verifier per configuration, so that its header cache sees many tokens. */
const fastVerifiers = new Map<string, HmacFastVerifier>();

function fastVerify(config: Config, token: string): Record<string, unknown> | undefined {
  const id = JSON.stringify(config);
  let verifier = fastVerifiers.get(id);
  if (verifier === undefined) {
    verifier = new HmacFastVerifier({ key: KEY, ...config });
    fastVerifiers.set(id, verifier);
  }
  return verifier.verify(token, NOW);
}

/** What TokenVerifier's jsonwebtoken path returns for the token, or the error's name. */
function libraryVerify(
  config: Config,
  token: string,
): { ok: true; claims: unknown } | { ok: false; error: string } {
  try {
    const claims: unknown = jwt.verify(token, {
      // As in TokenVerifier: jsonwebtoken takes the prepared KeyObject.
      secret: KEY as unknown as string,
      algorithms: config.algorithms,
      issuer: config.issuer as string | [string, ...string[]] | undefined,
      audience: config.audience as string | [string, ...string[]] | undefined,
      clockTolerance: config.clockToleranceSeconds,
      clockTimestamp: NOW,
    });
    return { ok: true, claims };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.name : String(error) };
  }
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

type Spelling = (text: string) => string;

/** A token over raw header and payload text, which a library would refuse to produce. */
function rawToken(
  headerText: string,
  payloadText: string,
  alg: HsAlg,
  secret: string | KeyObject,
  spellHeader: Spelling = b64,
  spellPayload: Spelling = b64,
): string {
  const input = `${spellHeader(headerText)}.${spellPayload(payloadText)}`;
  return `${input}.${createHmac(HASH[alg], secret).update(input).digest('base64url')}`;
}

function librarySign(claims: Record<string, unknown>, alg: HsAlg, secret: string): string {
  try {
    return jwt.sign(claims, { secret, algorithm: alg, noTimestamp: !('iat' in claims) });
  } catch {
    // jwt.sign refuses non-numeric exp, nbf and iat, and trips over claims named "toString".
    return rawToken(JSON.stringify({ alg, typ: 'JWT' }), JSON.stringify(claims), alg, secret);
  }
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The same signature bytes spelled with other spare bits in the last character (HS256, HS512). */
function respellLastChar(token: string): string {
  const last = token.at(-1) ?? 'A';
  return token.slice(0, -1) + (B64URL[B64URL.indexOf(last) ^ 1] ?? 'A');
}

const configArb: fc.Arbitrary<Config> = fc.record({
  algorithms: fc.oneof(
    { weight: 3, arbitrary: fc.constant<HsAlg[]>([...HS_ALGS]) },
    fc.subarray([...HS_ALGS], { minLength: 1 }),
  ),
  issuer: fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    fc.constantFrom(...ISSUERS, ''),
    fc.subarray(ISSUERS, { minLength: 1 }),
  ),
  audience: fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    fc.constantFrom(...AUDIENCES, ''),
    fc.subarray(AUDIENCES, { minLength: 1 }),
  ),
  clockToleranceSeconds: fc.constantFrom(0, 0, 1, 5, 30, 0.5),
});

/** Times around the tolerance boundaries, plus far ones and fractions. */
const timeArb = fc.oneof(
  fc.integer({ min: -35, max: 35 }).map((offset) => NOW + offset),
  fc.integer({ min: -10_000_000, max: 10_000_000 }).map((offset) => NOW + offset),
  fc.double({ min: -40, max: 40, noNaN: true }).map((offset) => NOW + offset),
);

const oddValueArb = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.string({ maxLength: 12 }),
  fc.constant([]),
  fc.constant({}),
);

const claimsArb: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      extra: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), {
        maxKeys: 4,
      }),
      sub: fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), oddValueArb),
      exp: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: 60, max: 1e7 }).map((offset) => NOW + offset) },
        { weight: 4, arbitrary: timeArb },
        { weight: 1, arbitrary: oddValueArb },
      ),
      nbf: fc.oneof(
        { weight: 4, arbitrary: fc.integer({ min: 60, max: 1e7 }).map((offset) => NOW - offset) },
        { weight: 4, arbitrary: timeArb },
        { weight: 1, arbitrary: oddValueArb },
      ),
      iat: fc.oneof({ weight: 8, arbitrary: timeArb }, { weight: 1, arbitrary: oddValueArb }),
      iss: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...ISSUERS) },
        fc.constantFrom(
          ...ISSUERS.flatMap((iss) => [`${iss}/`, ` ${iss}`, iss.toUpperCase(), [iss]]),
        ),
        fc.string({ maxLength: 8 }),
        oddValueArb,
      ),
      aud: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...AUDIENCES) },
        fc.constantFrom(...AUDIENCES.flatMap((aud) => [`${aud}x`, aud.slice(1), [[aud]]])),
        fc.array(fc.oneof(fc.constantFrom(...AUDIENCES), fc.string({ maxLength: 4 })), {
          maxLength: 3,
        }),
        oddValueArb,
      ),
    },
    { requiredKeys: ['extra'] },
  )
  .map(({ extra, ...claims }) => ({ ...extra, ...claims }));

const headerArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Record<string, unknown>>({ typ: 'JWT' }) },
  { weight: 2, arbitrary: fc.constant<Record<string, unknown>>({}) },
  fc.constantFrom<Record<string, unknown>>(
    { typ: 'jwt' },
    { typ: 'at+jwt', kid: 'k1' },
    { typ: null },
    { cty: 'JWT', extra: '\u00e9\u4e2d' },
  ),
);

/** Payload text that is not a JSON object, or is one in an unusual spelling. */
const oddPayloadTextArb = fc.oneof(
  fc.constantFrom('[]', '[{"sub":"a"}]', '42', 'null', '"sub"', 'true', '{"sub":"a"', 'not json'),
  fc.constantFrom(' {"sub":"a"} ', '\n{"sub":"a"}\t', '{"sub":"a","sub":"b"}', '\ufeff{"sub":"a"}'),
  fc.constantFrom('{"sub":"a","exp":1e999}', '{"sub":"a","exp":-0}', '{"__proto__":{"exp":1}}'),
  fc.string({ maxLength: 30 }),
);

const oddHeaderTextArb = fc.constantFrom(
  '{"alg":"none","alg":"HS256"}',
  '{"alg":"HS256","alg":"none"}',
  ' {"alg":"HS256"} ',
  '["HS256"]',
  '"HS256"',
  'null',
  '{"alg":"HS256"',
  '{"alg":"hs256"}',
  '{"alg":["HS256"]}',
  '{"__proto__":{"alg":"HS256"}}',
  '{"alg":"HS256","typ":"JWT","x":"\u00ff\u0100"}',
);

/** Segments signed as spelled: jws refuses all but unpadded base64url, even when signed. */
const spellingArb: fc.Arbitrary<Spelling> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Spelling>(b64) },
  fc.constantFrom<Spelling>(
    (text) => Buffer.from(text).toString('base64'),
    (text) => Buffer.from(text).toString('base64').replace(/=+$/, ''),
    (text) => Buffer.from(text).toString('base64').replaceAll('+', '-').replaceAll('/', '_'),
    (text) => `${b64(text)}=`,
    (text) => `${b64(text)}A`,
    (text) => ` ${b64(text)}`,
    (text) => `${b64(text)}\n`,
    (text) => b64(text).replace(/(.{4})/, '$1 '),
    () => '',
  ),
);

type Mutation = (token: string) => string;

function replaceSegment(token: string, index: number, segment: string): string {
  const parts = token.split('.');
  parts[index] = segment;
  return parts.join('.');
}

/** A segment's JSON object, or an empty one when it is not one. */
function segmentObject(token: string, index: number): object {
  try {
    const value: unknown = JSON.parse(
      Buffer.from(token.split('.')[index] ?? '', 'base64url').toString(),
    );
    return isPlainObject(value) ? (value as object) : {};
  } catch {
    return {};
  }
}

function headerWith(token: string, changes: Record<string, unknown>): string {
  return replaceSegment(token, 0, b64(JSON.stringify({ ...segmentObject(token, 0), ...changes })));
}

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 24, arbitrary: fc.constant<Mutation>((token) => token) },
  fc.nat().map<Mutation>((n) => (token) => {
    const signatureStart = token.lastIndexOf('.') + 1;
    const at = signatureStart + (n % Math.max(1, token.length - signatureStart));
    const old = token[at] ?? 'A';
    const replacement = B64URL[(B64URL.indexOf(old) + 1 + (n % 63)) % 64] ?? 'A';
    return token.slice(0, at) + replacement + token.slice(at + 1);
  }),
  fc.constant<Mutation>(respellLastChar),
  fc
    .constantFrom('none', 'RS256', 'ES256', 'hs256', 'HS256', 'HS384', 'HS512')
    .map<Mutation>((alg) => (token) => headerWith(token, { alg })),
  fc.constant<Mutation>((token) => replaceSegment(headerWith(token, { alg: 'none' }), 2, '')),
  fc.constant<Mutation>((token) => replaceSegment(token, 2, '')),
  fc.constant<Mutation>((token) => {
    const tampered = { ...segmentObject(token, 1), sub: 'admin', role: 'admin' };
    return replaceSegment(token, 1, b64(JSON.stringify(tampered)));
  }),
  fc.constantFrom('.', '.x', '..').map<Mutation>((suffix) => (token) => token + suffix),
  fc.nat().map<Mutation>((n) => (token) => {
    const at = n % (token.length + 1);
    return `${token.slice(0, at)}.${token.slice(at)}`;
  }),
  fc.constantFrom(' ', '\n', '\t').map<Mutation>((space) => (token) => space + token + space),
  fc.nat(2).map<Mutation>((index) => (token) => {
    const parts = token.split('.');
    parts[index] = `${parts[index] ?? ''}=`;
    return parts.join('.');
  }),
  fc.constant<Mutation>((token) => token.replaceAll('-', '+').replaceAll('_', '/')),
  fc.nat().map<Mutation>((n) => (token) => token.slice(0, n % token.length)),
);

/** Tokens: library-signed, hand-signed over odd text, then perhaps mutated. */
const tokenArb: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom(...HS_ALGS),
    fc.oneof(
      { weight: 4, arbitrary: fc.constant('library' as const) },
      { weight: 2, arbitrary: fc.constant('header' as const) },
      { weight: 1, arbitrary: fc.constant('oddPayload' as const) },
      { weight: 1, arbitrary: fc.constant('oddHeader' as const) },
      { weight: 2, arbitrary: fc.constant('oddSpelling' as const) },
    ),
    fc.oneof({ weight: 8, arbitrary: fc.constant(SECRET) }, fc.constant(OTHER_SECRET)),
    claimsArb,
    headerArb,
    oddPayloadTextArb,
    oddHeaderTextArb,
    spellingArb,
    spellingArb,
    mutationArb,
  )
  .map(([alg, kind, secret, claims, header, oddPayload, oddHeader, spellH, spellP, mutate]) => {
    let token: string;
    if (kind === 'library') token = librarySign(claims, alg, secret);
    else if (kind === 'oddPayload') {
      token = rawToken(JSON.stringify({ alg, typ: 'JWT' }), oddPayload, alg, secret);
    } else if (kind === 'oddHeader') {
      token = rawToken(oddHeader, JSON.stringify(claims), alg, secret);
    } else if (kind === 'oddSpelling') {
      // Non-ASCII text gives '+' and '/' in standard base64.
      const payload = JSON.stringify({ ...claims, note: '\u00ff\u00fe>?\u00fb' });
      token = rawToken(JSON.stringify({ alg, typ: 'JWT' }), payload, alg, secret, spellH, spellP);
    } else {
      token = rawToken(JSON.stringify({ ...header, alg }), JSON.stringify(claims), alg, secret);
    }
    return mutate(token);
  });

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

describe('HmacFastVerifier', () => {
  it('accepts exactly the tokens jsonwebtoken accepts as a claims object, with equal claims', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(configArb, tokenArb, (config, token) => {
        const fast = fastVerify(config, token);
        const library = libraryVerify(config, token);
        if (fast !== undefined) {
          assert.equal(
            library.ok,
            true,
            `fast path accepted what jsonwebtoken refused: ${JSON.stringify(library)}`,
          );
          assert.deepStrictEqual(fast, library.ok ? library.claims : undefined);
          accepted += 1;
        } else {
          // Not a no-op: what jsonwebtoken accepts as claims, the fast path accepts too.
          assert.equal(library.ok && isPlainObject(library.claims), false);
          refused += 1;
        }
      }),
      { numRuns: 3000, seed: 20_261_123 },
    );
    // The generator reaches both sides.
    assert.ok(accepted > 300, `accepted ${accepted}`);
    assert.ok(refused > 300, `refused ${refused}`);
  });

  it('accepts every plainly valid token, whatever other claims it carries', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...HS_ALGS),
        fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.nat()),
        fc.integer({ min: 60, max: 10_000_000 }),
        fc.dictionary(
          fc.string({ maxLength: 8 }).filter((name) => name !== 'nbf'),
          fc.jsonValue({ maxDepth: 2 }),
          { maxKeys: 4 },
        ),
        (alg, sub, lifetime, extra) => {
          const claims = { ...extra, sub, iat: NOW - 10, exp: NOW + lifetime };
          const token = librarySign(claims, alg, SECRET);
          const config: Config = { algorithms: [...HS_ALGS], clockToleranceSeconds: 0 };
          assert.deepStrictEqual(fastVerify(config, token), JSON.parse(JSON.stringify(claims)));
        },
      ),
      { numRuns: 500, seed: 7 },
    );
  });

  describe('edge cases, each as jsonwebtoken decides them', () => {
    const config = (changes: Partial<Config> = {}): Config => ({
      algorithms: ['HS256'],
      clockToleranceSeconds: 0,
      ...changes,
    });
    const sign = (claims: Record<string, unknown>, alg: HsAlg = 'HS256'): string =>
      librarySign(claims, alg, SECRET);
    function agree(cfg: Config, token: string, accepts: boolean): void {
      const library = libraryVerify(cfg, token);
      assert.equal(library.ok, accepts, JSON.stringify(library));
      assert.equal(fastVerify(cfg, token) !== undefined, accepts);
    }

    it('exp: expired from exp + tolerance on, inclusive', () => {
      const tolerant = config({ clockToleranceSeconds: 5 });
      agree(tolerant, sign({ sub: 'a', exp: NOW - 5 }), false);
      agree(tolerant, sign({ sub: 'a', exp: NOW - 4 }), true);
      agree(config(), sign({ sub: 'a', exp: NOW }), false);
      agree(config(), sign({ sub: 'a', exp: NOW + 1 }), true);
      agree(config({ clockToleranceSeconds: 0.5 }), sign({ sub: 'a', exp: NOW - 0.5 }), false);
      agree(config({ clockToleranceSeconds: 0.5 }), sign({ sub: 'a', exp: NOW - 0.25 }), true);
    });

    it('nbf: not active past now + tolerance only', () => {
      const tolerant = config({ clockToleranceSeconds: 5 });
      agree(tolerant, sign({ sub: 'a', nbf: NOW + 5 }), true);
      agree(tolerant, sign({ sub: 'a', nbf: NOW + 6 }), false);
      agree(config(), sign({ sub: 'a', nbf: NOW }), true);
      agree(config(), sign({ sub: 'a', nbf: NOW + 1 }), false);
    });

    it('exp and nbf of another type are refused', () => {
      for (const exp of ['9999999999', null, true]) {
        agree(
          config(),
          rawToken('{"alg":"HS256"}', JSON.stringify({ sub: 'a', exp }), 'HS256', SECRET),
          false,
        );
      }
      agree(config(), rawToken('{"alg":"HS256"}', '{"sub":"a","nbf":"0"}', 'HS256', SECRET), false);
    });

    it('aud: any token audience may match any configured one', () => {
      agree(
        config({ audience: ['admin-api', 'realtime-api'] }),
        sign({ sub: 'a', aud: ['x', 'realtime-api'] }),
        true,
      );
      agree(
        config({ audience: 'realtime-api' }),
        sign({ sub: 'a', aud: ['x', 'realtime-api'] }),
        true,
      );
      agree(config({ audience: 'realtime-api' }), sign({ sub: 'a', aud: 'realtime-api' }), true);
      agree(config({ audience: ['realtime-api'] }), sign({ sub: 'a', aud: ['x', 'y'] }), false);
      agree(config({ audience: 'realtime-api' }), sign({ sub: 'a' }), false);
      agree(config({ audience: 'realtime-api' }), sign({ sub: 'a', aud: [] }), false);
    });

    it('iss: must equal the issuer or be listed', () => {
      agree(
        config({ issuer: 'https://issuer.test' }),
        sign({ sub: 'a', iss: 'https://issuer.test' }),
        true,
      );
      agree(
        config({ issuer: 'https://issuer.test' }),
        sign({ sub: 'a', iss: 'https://evil.test' }),
        false,
      );
      agree(config({ issuer: 'https://issuer.test' }), sign({ sub: 'a' }), false);
      agree(config({ issuer: ISSUERS }), sign({ sub: 'a', iss: ISSUERS[1] }), true);
      agree(config({ issuer: ISSUERS }), sign({ sub: 'a', iss: [ISSUERS[0]] }), false);
      assert.equal(
        fastVerify(config({ issuer: 'https://issuer.test' }), sign({ sub: 'a', iss: 'x' })),
        undefined,
      );
    });

    it('an empty issuer or audience is not checked at all', () => {
      agree(config({ issuer: '', audience: '' }), sign({ sub: 'a', iss: 'x', aud: 'y' }), true);
    });

    it('algorithms: only configured HS algorithms', () => {
      agree(config({ algorithms: ['HS256'] }), sign({ sub: 'a' }, 'HS512'), false);
      agree(config({ algorithms: ['HS384', 'HS512'] }), sign({ sub: 'a' }, 'HS512'), true);
    });

    it('refuses a signature spelled with other spare bits, as jwa does', () => {
      for (const alg of ['HS256', 'HS512'] as const) {
        const token = respellLastChar(sign({ sub: 'a' }, alg));
        const signature = token.split('.')[2] ?? '';
        // The bytes are the same; only the spelling differs.
        assert.deepEqual(
          Buffer.from(signature, 'base64url'),
          Buffer.from(sign({ sub: 'a' }, alg).split('.')[2] ?? '', 'base64url'),
        );
        agree(config({ algorithms: [alg] }), token, false);
      }
    });

    it('a header without typ still yields the payload object', () => {
      agree(config(), rawToken('{"alg":"HS256"}', '{"sub":"a"}', 'HS256', SECRET), true);
      // An array payload jsonwebtoken returns as it is; the fast path leaves it to jsonwebtoken.
      const arrayPayload = rawToken('{"alg":"HS256"}', '[1]', 'HS256', SECRET);
      assert.deepEqual(libraryVerify(config(), arrayPayload), { ok: true, claims: [1] });
      assert.equal(fastVerify(config(), arrayPayload), undefined);
    });
  });
});

describe('TokenVerifier with the fast path', () => {
  const verifierFor = (jwtOptions: {
    secret?: string;
    publicKey?: string;
    algorithms?: JwtAlgorithm[];
  }) => new TokenVerifier(resolveRealtimeOptions({ jwt: jwtOptions }));
  const now = () => Math.floor(Date.now() / 1000);

  it('accepts through the fast path and keeps the principal and error results', () => {
    const fastCalls = mock.method(HmacFastVerifier.prototype, 'verify');
    try {
      const verifier = verifierFor({ secret: SECRET });
      const exp = now() + 600;
      const result = verifier.verify(librarySign({ sub: 42, role: 'admin', exp }, 'HS256', SECRET));
      assert.deepEqual(result, {
        ok: true,
        principal: {
          userId: '42',
          isAdmin: true,
          expiresAt: exp * 1000,
          claims: { sub: 42, role: 'admin', exp },
        },
      });
      assert.equal(fastCalls.mock.callCount(), 1);
      assert.notEqual(fastCalls.mock.calls[0]?.result, undefined);

      const expired = verifier.verify(librarySign({ sub: 'a', exp: now() - 1 }, 'HS256', SECRET));
      assert.deepEqual(expired, { ok: false, expired: true, reason: 'TokenExpiredError' });
      const forged = verifier.verify(librarySign({ sub: 'a' }, 'HS256', OTHER_SECRET));
      assert.deepEqual(forged, { ok: false, expired: false, reason: 'JsonWebTokenError' });
      const early = verifier.verify(librarySign({ sub: 'a', nbf: now() + 600 }, 'HS256', SECRET));
      assert.deepEqual(early, { ok: false, expired: false, reason: 'NotBeforeError' });
      const noSub = verifier.verify(librarySign({ role: 'admin' }, 'HS256', SECRET));
      assert.deepEqual(noSub, { ok: false, expired: false, reason: 'missing sub claim' });
    } finally {
      fastCalls.mock.restore();
    }
  });

  it('does not use the fast path when a non-HS algorithm is configured', () => {
    const fastCalls = mock.method(HmacFastVerifier.prototype, 'verify');
    try {
      const verifier = verifierFor({ secret: SECRET, algorithms: ['HS256', 'RS256'] });
      const result = verifier.verify(librarySign({ sub: 'a' }, 'HS256', SECRET));
      assert.equal(result.ok, true);
      assert.equal(fastCalls.mock.callCount(), 0);
    } finally {
      fastCalls.mock.restore();
    }
  });
});
