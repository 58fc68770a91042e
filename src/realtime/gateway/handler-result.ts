import { isObservable, lastValueFrom, type Observable, toArray } from 'rxjs';

/**
 * What a handler answered, taken as Nest's own WsAdapter takes it: a promise is awaited, and an
 * Observable is subscribed to, every value it emits being an answer. That Observable may be the
 * handler's own or the lazy one Nest's interceptors wrap each call in: the handler runs only once
 * it is subscribed to.
 */
export function settleHandlerResult(result: unknown): Promise<unknown> {
  return Promise.resolve(result).then((value) => (isObservable(value) ? emittedBy(value) : value));
}

async function emittedBy(observable: Observable<unknown>): Promise<unknown[]> {
  const emitted = await lastValueFrom(observable.pipe(toArray()));
  return emitted.filter((item) => item !== undefined && item !== null).flat();
}
