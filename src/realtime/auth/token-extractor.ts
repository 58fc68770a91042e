import type { IncomingMessage } from 'node:http';

/** Where a token was found, in order of precedence (PROTOCOL.md section 1). */
export type TokenSource = 'authorization' | 'subprotocol' | 'query' | 'path';

/** The first token source present; `token` is undefined when that source is malformed. */
export interface ExtractedToken {
  source: TokenSource;
  token: string | undefined;
}

export const BEARER_PROTOCOL = 'bearer';

/**
 * Finds the token of an upgrade request. The first source present decides: a malformed or invalid
 * token there is never replaced by one from a lower source.
 */
export function extractToken(
  request: IncomingMessage,
  basePath: string,
): ExtractedToken | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return { source: 'authorization', token: match?.[1] };
  }
  const protocols = parseProtocols(request.headers['sec-websocket-protocol']);
  const bearerAt = protocols.indexOf(BEARER_PROTOCOL);
  if (bearerAt >= 0) {
    return { source: 'subprotocol', token: nonEmpty(protocols[bearerAt + 1]) };
  }
  const target = requestTarget(request);
  if (!target) return undefined;
  const queryToken = queryParam(target.search, 'token');
  if (queryToken !== null) return { source: 'query', token: nonEmpty(queryToken) };
  const segment = pathToken(target.pathname, basePath);
  if (segment !== undefined) return { source: 'path', token: nonEmpty(segment) };
  return undefined;
}

/** The path and query of a request's URL, as `new URL(url, 'http://localhost')` gives them. */
export interface RequestTarget {
  pathname: string;
  search: string;
}

// Targets the URL parser returns unchanged: non-empty segments of unreserved characters that do
// not start with a dot, and a query of the same characters, '=' and '&'. Everything else (escapes,
// dot segments, characters it encodes, an absolute form) goes through URL.
const PLAIN_PATH = /^(?:\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$|^\/$/;
const PLAIN_QUERY = /^[A-Za-z0-9._~=&-]*$/;

/**
 * The request's path and query; undefined when its URL cannot be parsed. A plain target (a
 * client's `/ws?token=…`) is split by hand: building a URL showed in connection profiles. Routing
 * and token extraction each call it; not cached, as a plain split costs ~0.2 µs.
 */
export function requestTarget(request: IncomingMessage): RequestTarget | undefined {
  const url = request.url ?? '/';
  const mark = url.indexOf('?');
  const pathname = mark < 0 ? url : url.slice(0, mark);
  const query = mark < 0 ? '' : url.slice(mark + 1);
  if (PLAIN_PATH.test(pathname) && PLAIN_QUERY.test(query)) {
    return { pathname, search: query.length === 0 ? '' : `?${query}` };
  }
  try {
    const parsed = new URL(url, 'http://localhost');
    return { pathname: parsed.pathname, search: parsed.search };
  } catch {
    return undefined;
  }
}

/**
 * `new URLSearchParams(search).get(name)`. A query with nothing to decode (no `%` or `+`, as a
 * base64url token's) is split by hand: building URLSearchParams showed in connection profiles.
 */
export function queryParam(search: string, name: string): string | null {
  if (search.includes('%') || search.includes('+')) return new URLSearchParams(search).get(name);
  const query = search.startsWith('?') ? search.slice(1) : search;
  for (const pair of query.split('&')) {
    if (pair.length === 0) continue;
    const equals = pair.indexOf('=');
    if (equals < 0) {
      if (pair === name) return '';
    } else if (pair.slice(0, equals) === name) {
      return pair.slice(equals + 1);
    }
  }
  return null;
}

export function parseProtocols(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

/** The `<token>` of `<basePath>/<token>`, or undefined when the path is not of that form. */
export function pathToken(pathname: string, basePath: string): string | undefined {
  const prefix = basePath === '/' ? '/' : `${basePath}/`;
  if (!pathname.startsWith(prefix)) return undefined;
  const rest = pathname.slice(prefix.length);
  if (rest.length === 0 || rest.includes('/')) return undefined;
  try {
    return decodeURIComponent(rest);
  } catch {
    return '';
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.length === 0 ? undefined : value;
}
