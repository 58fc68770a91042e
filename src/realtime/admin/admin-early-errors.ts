import { BadRequestException, HttpException, Logger, type Type } from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants.js';
import type { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendAdminError } from './admin-exception.filter.js';

type Next = (error?: unknown) => void;

/** Set on each route method of an admin controller, with the controller as its value. */
const ADMIN_ROUTE_OF = Symbol('realtime:admin-route-of');

/** What this needs of Express 5's router (the `router` package): its layers and routes. */
interface RouterLayer {
  readonly route?: {
    readonly methods: Readonly<Record<string, boolean | undefined>>;
    readonly stack: readonly { readonly handle: unknown }[];
  };
  match(path: string): unknown;
}

/**
 * Marks `controller`'s route methods so that the handlers Nest registers for them can be told
 * apart in the router: Nest copies a method's metadata onto each handler it registers. Call when
 * the class is made, before Nest registers its routes.
 */
export function markAdminRoutes(controller: Type<unknown>): void {
  const prototype = controller.prototype as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const method = prototype[name];
    if (typeof method !== 'function' || name === 'constructor') continue;
    if (Reflect.getMetadata(PATH_METADATA, method) === undefined) continue;
    Reflect.defineMetadata(ADMIN_ROUTE_OF, controller, method);
  }
}

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
 * The admin routes are found among the routes Express itself holds (marked by
 * {@link markAdminRoutes}) and matched as Express matches them, so a global prefix, URI
 * versioning, a `RouterModule` path or the app's case and strict routing settings apply as they
 * do to the routes themselves. Express only (another adapter keeps Nest's shape).
 */
export function installAdminEarlyErrors(
  host: HttpAdapterHost | undefined,
  controller: Type<unknown>,
): void {
  const adapter = host?.httpAdapter;
  if (!adapter || adapter.getType() !== 'express') return;
  const routes = adminRoutesIn(adapter.getInstance(), controller);
  if (routes.length === 0) {
    // Express without a router we can read (another major version): the host's shape stays.
    new Logger('RealtimeAdmin').warn({
      event: 'admin.early_errors_unavailable',
      detail: "admin routes not found in Express's router: early errors keep the host's shape",
    });
    return;
  }
  const handler = (
    error: unknown,
    request: IncomingMessage,
    response: ServerResponse,
    next: Next,
  ) => {
    // The same mapping Nest applies before its filters: 4xx body-parser and decode errors only;
    // anything else (a 5xx, a host middleware's own error) stays for the host to log and answer.
    const exception = adapter.mapException(error);
    if (
      !(exception instanceof HttpException) ||
      response.headersSent ||
      !routes.some((route) => serves(route, request))
    ) {
      next(error);
      return;
    }
    sendAdminError(response, isParseFailure(error) ? notAnObject(exception) : exception);
  };
  adapter.use(handler);
}

/** The router layers of `controller`'s routes in an Express 5 app (none if it has no router). */
function adminRoutesIn(app: unknown, controller: Type<unknown>): RouterLayer[] {
  const router = (app as { router?: { stack?: unknown } } | null)?.router;
  const stack = Array.isArray(router?.stack) ? (router.stack as RouterLayer[]) : [];
  return stack.filter((layer) =>
    layer.route?.stack.some(
      ({ handle }) =>
        typeof handle === 'function' && Reflect.getMetadata(ADMIN_ROUTE_OF, handle) === controller,
    ),
  );
}

function serves(layer: RouterLayer, request: IncomingMessage): boolean {
  const methods = layer.route!.methods;
  // Express answers HEAD with a GET route.
  const method = (request.method ?? '').toLowerCase();
  if (!methods[method] && !(method === 'head' && methods.get) && !methods._all) return false;
  // The app-relative path, as the router matched it (`url` is restored before error handlers).
  const path = (request.url ?? '').split('?', 1)[0]!;
  try {
    return Boolean(layer.match(path));
  } catch {
    // Only a match decodes parameters, so a parameter that cannot be decoded means it matched.
    return true;
  }
}

/** body-parser's strict JSON refuses `null` with "is not valid JSON": say what it wants. */
function isParseFailure(error: unknown): boolean {
  return (error as { type?: unknown } | null)?.type === 'entity.parse.failed';
}

function notAnObject(exception: HttpException): HttpException {
  return new BadRequestException(`The body must be a JSON object (${exception.message})`);
}
