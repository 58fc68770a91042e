import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { nameProblem, USER_ID_RULE } from '../name-limits.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { HmacFastVerifier } from './hmac-fast-verifier.js';
import { isExpired, type RealtimePrincipal } from './realtime-principal.js';

export type VerificationResult =
  { ok: true; principal: RealtimePrincipal } | { ok: false; expired: boolean; reason: string };

/** Verifies a JWT against the configured key, algorithms, issuer and audience. */
@Injectable()
export class TokenVerifier {
  private readonly jwt: JwtService;
  /** Set when every configured algorithm is HMAC with a secret; it only ever accepts. */
  private readonly fast: HmacFastVerifier | undefined;

  constructor(@Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions) {
    const { secret, publicKey, algorithms, issuer, audience, clockToleranceSeconds } = options.jwt;
    // A prepared key: given a string, jsonwebtoken first tries it as a public key on every verify
    // (a failing createPublicKey, most of a verification's cost) before using it as a secret.
    const key: KeyObject = publicKey
      ? createPublicKey(publicKey)
      : createSecretKey(Buffer.from(secret ?? '', 'utf8'));
    this.jwt = new JwtService({
      // jsonwebtoken takes a KeyObject; @nestjs/jwt's types only name strings and Buffers.
      ...((publicKey ? { publicKey: key } : { secret: key }) as unknown as { secret?: string }),
      verifyOptions: {
        algorithms,
        // Non-empty lists: resolveRealtimeOptions refuses empty ones.
        issuer: issuer as string | [string, ...string[]] | undefined,
        audience: audience as string | [string, ...string[]] | undefined,
        clockTolerance: clockToleranceSeconds,
      },
    });
    this.fast =
      !publicKey && algorithms.every((alg) => alg.startsWith('HS'))
        ? new HmacFastVerifier({ key, algorithms, issuer, audience, clockToleranceSeconds })
        : undefined;
  }

  verify(token: string): VerificationResult {
    let claims = this.fast?.verify(token);
    // Whatever the fast path does not accept, jsonwebtoken decides, with its error names.
    if (claims === undefined) {
      try {
        claims = this.jwt.verify<Record<string, unknown>>(token);
      } catch (error) {
        const name = error instanceof Error ? error.name : '';
        // The library's message may quote claim values; only its class is kept.
        return {
          ok: false,
          expired: name === 'TokenExpiredError',
          reason: name || 'invalid token',
        };
      }
    }
    const userId = normalizeSubject(claims.sub);
    if (userId === undefined) {
      const reason = claims.sub === undefined ? 'missing sub claim' : 'invalid sub claim';
      return { ok: false, expired: false, reason };
    }
    const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
    const toleranceMs = this.options.jwt.clockToleranceSeconds * 1000;
    const principal: RealtimePrincipal = {
      userId,
      isAdmin: isAdminClaims(claims),
      expiresAt: exp === undefined ? undefined : exp * 1000 + toleranceMs,
      claims,
    };
    // Both verifiers compare whole seconds: a fractional `exp` can be past by up to one.
    if (isExpired(principal)) return { ok: false, expired: true, reason: 'TokenExpiredError' };
    return { ok: true, principal };
  }
}

// The user id RealtimeService and the admin API accept (USER_ID_RULE): a user it would refuse to
// reach (a control character, a lone surrogate, over 256 UTF-16 units) does not connect at all.
function normalizeSubject(sub: unknown): string | undefined {
  if (typeof sub === 'string')
    return nameProblem(USER_ID_RULE, sub) === undefined ? sub : undefined;
  if (typeof sub === 'number' && Number.isFinite(sub)) return String(sub);
  return undefined;
}

export function isAdminClaims(claims: Record<string, unknown>): boolean {
  return (
    claims.role === 'admin' ||
    claims.is_admin === true ||
    (Array.isArray(claims.roles) && claims.roles.includes('admin'))
  );
}
