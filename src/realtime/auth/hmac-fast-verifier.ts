import { createHmac, type KeyObject, timingSafeEqual } from 'node:crypto';
import { HmacSha256 } from './hmac-sha256.js';

export interface HmacFastVerifierOptions {
  /** The prepared secret, as jsonwebtoken is given it. */
  key: KeyObject | Buffer;
  /** Configured algorithms; only the HS* among them are verified here. */
  algorithms: readonly string[];
  issuer?: string | readonly string[];
  audience?: string | readonly string[];
  clockToleranceSeconds: number;
}

const HASH_OF: Readonly<Record<string, string>> = {
  HS256: 'sha256',
  HS384: 'sha384',
  HS512: 'sha512',
};

/** jws's shape check: base64url characters only (no padding, no '+' or '/'). */
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * One-pass verification of HMAC-signed JWTs that can only accept: it returns the claims when
 * jsonwebtoken's `verify` (9.x, through jws 4 and jwa 2) would return the same object, and
 * `undefined` for anything else, so that the caller asks jsonwebtoken, which gives the error.
 * Each check mirrors one of jsonwebtoken's, down to its comparisons.
 */
export class HmacFastVerifier {
  private readonly hashes = new Map<string, string>();
  /** An issuer's tokens share one header: the last one seen and the hash it names, if any. */
  private lastHeader = '';
  private lastHash: string | undefined;
  /** HS256 in JavaScript (see hmac-sha256.ts); the other hashes through `createHmac`. */
  private readonly sha256: HmacSha256;

  constructor(private readonly options: HmacFastVerifierOptions) {
    const { key } = options;
    this.sha256 = new HmacSha256(Buffer.isBuffer(key) ? key : key.export());
    for (const alg of options.algorithms) {
      const hash = HASH_OF[alg];
      if (hash !== undefined) this.hashes.set(alg, hash);
    }
  }

  /** The claims, or `undefined` when jsonwebtoken has to decide. */
  verify(
    token: string,
    clockTimestamp = Math.floor(Date.now() / 1000),
  ): Record<string, unknown> | undefined {
    const firstDot = token.indexOf('.');
    const secondDot = token.indexOf('.', firstDot + 1);
    if (firstDot < 0 || secondDot < 0 || token.indexOf('.', secondDot + 1) >= 0) return undefined;
    const encodedHeader = token.slice(0, firstDot);
    const encodedPayload = token.slice(firstDot + 1, secondDot);
    const signature = token.slice(secondDot + 1);
    // An empty signature is an error with a secret; the rest is jws's JWS_REGEX.
    if (!SEGMENT.test(encodedHeader) || !SEGMENT.test(encodedPayload) || !SEGMENT.test(signature)) {
      return undefined;
    }

    if (encodedHeader !== this.lastHeader) {
      this.lastHash = this.hashOf(encodedHeader);
      this.lastHeader = encodedHeader;
    }
    const hash = this.lastHash;
    if (hash === undefined) return undefined;

    // jwa compares the base64url text, not the decoded bytes: a signature spelled with other
    // spare bits in its last character decodes to the same bytes but is refused there.
    if (!this.signatureMatches(hash, token.slice(0, secondDot), signature)) return undefined;

    // With typ 'JWT' jws parses the payload, otherwise jsonwebtoken does; either way a payload
    // that is not an object (or is an array) is left to jsonwebtoken.
    const payload = parseJson(Buffer.from(encodedPayload, 'base64').toString('utf8'));
    if (!isPlainObject(payload)) return undefined;
    return this.claimsAccepted(payload, clockTimestamp) ? payload : undefined;
  }

  private signatureMatches(hash: string, signed: string, signature: string): boolean {
    if (hash === 'sha256') return this.sha256.matches(signed, signature);
    const expected = createHmac(hash, this.options.key).update(signed).digest('base64url');
    if (expected.length !== signature.length) return false;
    return timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(signature, 'latin1'));
  }

  /** The hash of the header's `alg` when that is a configured HS algorithm. */
  private hashOf(encodedHeader: string): string | undefined {
    // jws decodes the header as latin1 ('binary'), the payload as UTF-8.
    const header = parseJson(Buffer.from(encodedHeader, 'base64').toString('latin1'));
    if (!isPlainObject(header) || typeof header.alg !== 'string') return undefined;
    return this.hashes.get(header.alg);
  }

  private claimsAccepted(payload: Record<string, unknown>, clockTimestamp: number): boolean {
    const { issuer, audience } = this.options;
    const tolerance = this.options.clockToleranceSeconds || 0;
    const { nbf, exp } = payload;
    if (nbf !== undefined && (typeof nbf !== 'number' || nbf > clockTimestamp + tolerance)) {
      return false;
    }
    if (exp !== undefined && (typeof exp !== 'number' || clockTimestamp >= exp + tolerance)) {
      return false;
    }
    // jsonwebtoken skips a falsy audience or issuer (an empty string) altogether.
    if (audience) {
      const audiences: readonly unknown[] = Array.isArray(audience) ? audience : [audience];
      const targets: readonly unknown[] = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      if (!targets.some((target) => audiences.some((expected) => expected === target))) {
        return false;
      }
    }
    if (issuer) {
      const listed = Array.isArray(issuer) && issuer.indexOf(payload.iss) !== -1;
      if (typeof issuer === 'string' ? payload.iss !== issuer : !listed) return false;
    }
    return true;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
