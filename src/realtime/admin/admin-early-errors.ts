import { BadRequestException, HttpException } from '@nestjs/common';
import type { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendAdminError } from './admin-exception.filter.js';

type Next = (error?: unknown) => void;

const READ = new Set(['GET', 'HEAD']);

/**
 * Errors raised before the admin controller runs never reach its filter: the host's body parser
 * (malformed JSON, a body that is not an object or array, over its size limit: 413, an unknown
 * charset or encoding: 415) and Express decoding `:id` (`%E0%A4%A`) hand them to Express's error
 * chain, where only Nest's global exception layer waits. This installs an Express error handler
 * after the routes and before that layer: for a request to an admin route, it answers such an
 * error in the admin shape with the status Nest would have given; every other error, and every
 * other route's, goes on to the host untouched.
 *
 * Call from `onModuleInit`: Nest registers routes before that hook and its exception layer after.
 * Express only (another adapter keeps Nest's shape). Routes are matched as mounted, so under a
 * global prefix or URI versioning nothing is matched and the host's shape stays.
 */
export function installAdminEarlyErrors(host: HttpAdapterHost | undefined, prefix: string): void {
  const adapter = host?.httpAdapter;
  if (!adapter || adapter.getType() !== 'express') return;
  const isAdminRoute = adminRouteMatcher(prefix);
  const handler = (
    error: unknown,
    request: IncomingMessage,
    response: ServerResponse,
    next: Next,
  ) => {
    // The same mapping Nest applies before its filters: 4xx body-parser and decode errors only;
    // anything else (a 5xx, a host middleware's own error) stays for the host to log and answer.
    const exception = adapter.mapException(error);
    if (!(exception instanceof HttpException) || response.headersSent || !isAdminRoute(request)) {
      next(error);
      return;
    }
    sendAdminError(response, isParseFailure(error) ? notAnObject(exception) : exception);
  };
  adapter.use(handler);
}

/** True for a request whose method and path one of the admin controller's routes serves. */
function adminRouteMatcher(prefix: string): (request: IncomingMessage) => boolean {
  const base = `^/${escapeRegExp(prefix.replace(/^\/+|\/+$/g, ''))}`;
  // Express matches routes ignoring case and one trailing slash; so does this.
  const route = (path: string) => new RegExp(`${base}/${path}/?$`, 'i');
  const routes: Array<[RegExp, ReadonlySet<string>]> = [
    [route('stats'), READ],
    [route('connections'), READ],
    [route('connections/[^/]+'), new Set([...READ, 'DELETE'])],
    [route('broadcast'), new Set(['POST'])],
  ];
  return (request) => {
    const url = (request as IncomingMessage & { originalUrl?: string }).originalUrl ?? request.url;
    const path = (url ?? '').split('?', 1)[0]!;
    const method = request.method ?? '';
    return routes.some(([pattern, methods]) => methods.has(method) && pattern.test(path));
  };
}

/** body-parser's strict JSON refuses `null` with "is not valid JSON": say what it wants. */
function isParseFailure(error: unknown): boolean {
  return (error as { type?: unknown } | null)?.type === 'entity.parse.failed';
}

function notAnObject(exception: HttpException): HttpException {
  return new BadRequestException(`The body must be a JSON object (${exception.message})`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
