import { Writable } from 'node:stream';
import type { WebSocket } from 'ws';

const writableEnd = Writable.prototype.end as (this: Writable, ...args: unknown[]) => Writable;

/**
 * `end()` as Writable's, except that on a finished stream it returns at once. There, with no
 * arguments, Writable's own `end()` changes nothing: it builds an ERR_STREAM_ALREADY_FINISHED,
 * with a stack trace, and drops it.
 */
export function endUnlessFinished(this: Writable, ...args: unknown[]): Writable {
  if (args.length === 0 && this.writableFinished && this.writableCorked === 0) return this;
  return writableEnd.apply(this, args);
}

/**
 * `ws` ends a socket's frame receiver twice when the peer's FIN comes before the socket closes
 * (on 'end', then on 'close'), which is how most connections end. The second call only builds and
 * drops an error: 2.5 µs in a loop; connect rounds (open and close) cost 1.07× the server CPU per
 * connection without this (median of 6 runs toggling it in one process; A/A 1.01×). The receiver
 * is a `ws` internal (as in protocol-error-closer.ts); with another one, nothing is done.
 */
export function skipSecondReceiverEnd(socket: WebSocket): void {
  const receiver = (socket as unknown as { _receiver?: unknown })._receiver;
  if (receiver instanceof Writable && receiver.end === writableEnd) {
    receiver.end = endUnlessFinished;
  }
}
