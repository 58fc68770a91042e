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

// Scheme and host are case-insensitive, a default port is the same origin without it
// (`https://x:443` is `https://x`), and a trailing slash is a common configuration slip.
function normalizeOrigin(origin: string): string {
  const trimmed = origin.trim().toLowerCase().replace(/\/$/, '');
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return trimmed; // not a URL, e.g. "null": compared as written
  }
  const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
  return bare && url.origin !== 'null' ? url.origin : trimmed;
}
