import { BadRequestException, HttpException, RequestMethod, type Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import type { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendAdminError } from './admin-exception.filter.js';

type Next = (error?: unknown) => void;

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
export function installAdminEarlyErrors(
  host: HttpAdapterHost | undefined,
  prefix: string,
  controller: Type<unknown>,
): void {
  const adapter = host?.httpAdapter;
  if (!adapter || adapter.getType() !== 'express') return;
  const isAdminRoute = adminRouteMatcher(prefix, controller);
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

/**
 * True for a request whose method and path one of `controller`'s routes serves, read from the
 * routes Nest itself maps (its `@Get`/`@Post`/`@Delete` metadata), so that the two cannot differ.
 */
function adminRouteMatcher(
  prefix: string,
  controller: Type<unknown>,
): (request: IncomingMessage) => boolean {
  const base = `^/${escapeRegExp(prefix.replace(/^\/+|\/+$/g, ''))}`;
  const routes: Array<[RegExp, string]> = [];
  const prototype = controller.prototype as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const handler = prototype[name];
    if (typeof handler !== 'function') continue;
    const path: unknown = Reflect.getMetadata(PATH_METADATA, handler);
    const method: unknown = Reflect.getMetadata(METHOD_METADATA, handler);
    if (typeof path !== 'string' || typeof method !== 'number') continue;
    const segments = escapeRegExp(path.replace(/^\/+|\/+$/g, '')).replace(/:\w+/g, '[^/]+');
    // Express matches routes ignoring case and one trailing slash; so does this.
    routes.push([new RegExp(`${base}/${segments}/?$`, 'i'), RequestMethod[method]!]);
  }
  return (request) => {
    const url = (request as IncomingMessage & { originalUrl?: string }).originalUrl ?? request.url;
    const path = (url ?? '').split('?', 1)[0]!;
    // Express answers HEAD with a GET route.
    const method = request.method === 'HEAD' ? 'GET' : (request.method ?? '');
    return routes.some(([pattern, routeMethod]) => routeMethod === method && pattern.test(path));
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
