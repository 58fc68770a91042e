import { createHmac } from 'node:crypto';

/** The secret every benchmark server verifies tokens with. */
export const BENCH_SECRET = 'bench-secret-not-for-production-use';

/** An HS256 JWT valid for `ttlS` seconds; minted here so the load needs no JWT library. */
export function jwt(claims: Record<string, unknown>, ttlS = 3600): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ ...claims, exp: Math.floor(Date.now() / 1000) + ttlS })}`;
  return `${body}.${createHmac('sha256', BENCH_SECRET).update(body).digest('base64url')}`;
}
