/** Who is on the other end of a connection, as established by the token at connect. */
export interface RealtimePrincipal {
  /** The token's `sub`, as a string. */
  readonly userId: string;
  readonly isAdmin: boolean;
  /** When the token stops being valid (its `exp` plus the clock tolerance), ms since epoch. */
  readonly expiresAt: number | undefined;
  /** The verified claims, for authorizers and host handlers. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export function isExpired(principal: RealtimePrincipal, now = Date.now()): boolean {
  return principal.expiresAt !== undefined && now >= principal.expiresAt;
}
