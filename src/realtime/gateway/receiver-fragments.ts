import type { WebSocket } from 'ws';

/** The part of ws's frame receiver this touches (an internal, as in receiver-end-guard.ts). */
interface FragmentCollector {
  _fragments?: unknown;
}

/**
 * ws's receiver collects a message's frames in `_fragments` and, at each message, puts a new `[]`
 * there: an allocation site whose arrays live until the client's next message. When the young
 * generation is at its maximum size (any Nest application) and many clients go quiet after one
 * message, V8 tenures that site; from then on each such array is born old, the next message's
 * payload is pushed into it, and the dead old array keeps that payload alive through every
 * scavenge until a full GC (bench/README.md, "W3 after the fan-out workloads"). Here a connection
 * keeps the array ws gave it after its first message and, after each message, puts it back
 * emptied in place of ws's new one: nothing from one message outlives it, wherever V8 put the
 * array. Called from the 'message' listener, where ws has just swapped the arrays (its loop waits
 * for the listener when events are deferred, so no frame is pushed meanwhile).
 *
 * Returns the array to keep for the next call.
 */
export function reuseFragments(
  socket: WebSocket,
  data: unknown,
  kept: unknown[] | undefined,
): unknown[] | undefined {
  const receiver = (socket as unknown as { _receiver?: FragmentCollector })._receiver;
  const current = receiver?._fragments;
  // Another ws, or not ws's fresh empty array: left alone.
  if (!Array.isArray(current) || current.length !== 0) return kept;
  // With binaryType 'fragments' the message is the array itself: it must not be emptied.
  if (kept === undefined || kept === data) return current;
  kept.length = 0;
  receiver!._fragments = kept;
  return kept;
}
