/**
 * Exact-match origin allow-list. A request without `Origin` is not from a browser and is allowed;
 * with an empty list every origin is allowed.
 */
export class OriginPolicy {
  private readonly allowed: ReadonlySet<string>;

  constructor(allowedOrigins: readonly string[]) {
    this.allowed = new Set(allowedOrigins.map(normalizeOrigin));
  }

  allows(origin: string | undefined): boolean {
    if (this.allowed.size === 0 || origin === undefined) return true;
    return this.allowed.has(normalizeOrigin(origin));
  }
}

// Scheme and host are case-insensitive; a trailing slash is a common configuration slip.
function normalizeOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/$/, '');
}
