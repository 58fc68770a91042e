import type { ErrorData, ServerEnvelope } from '../protocol/index.js';
import { RealtimeClientError } from './errors.js';
import type { ListenerRegistry } from './event-emitter.js';
import type { LifecycleEvents } from './events.js';

/** Server message types that would be confused with the client's own lifecycle events. */
const LIFECYCLE_EVENT_NAMES: ReadonlySet<string> = new Set<keyof LifecycleEvents>([
  'state',
  'message',
  'error',
  'established',
  'close',
  'resumed',
  'resync',
]);

/**
 * Hands a server message to the listeners of its type; an `error` goes to `error` listeners
 * instead, unless it answers a request (even one that timed out): then it belongs to that request.
 */
export function emitServerEvent(listeners: ListenerRegistry, envelope: ServerEnvelope): void {
  if (envelope.type === 'error') {
    if (envelope.in_reply_to === undefined) {
      const data = envelope.data as Partial<ErrorData>;
      listeners.emit(
        'error',
        new RealtimeClientError(String(data.code ?? 'UNKNOWN_ERROR'), String(data.message), {
          resetTime: data.reset_time,
        }),
      );
    }
    return;
  }
  if (!LIFECYCLE_EVENT_NAMES.has(envelope.type)) {
    listeners.emit(envelope.type, envelope.data, envelope);
  }
}
