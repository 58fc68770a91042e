import { MAX_EVENTS_PER_REQUEST, type ServerEnvelope } from '../protocol/index.js';
import { ClientErrorCode, RealtimeClientError } from './errors.js';
import { malformedReply, subscriptionAck } from './reply-shapes.js';

/** Events the server acknowledged; subscribed again after every reconnect. */
export class SubscriptionSet {
  private readonly events = new Set<string>();

  list(): string[] {
    return [...this.events];
  }

  add(events: readonly string[]): void {
    for (const event of events) this.events.add(event);
  }

  delete(events: readonly string[]): void {
    for (const event of events) this.events.delete(event);
  }

  /**
   * Subscribes again to every event, in chunks the server accepts; settles once every chunk is
   * answered. A failed chunk goes to `onError`: there is no caller to reject.
   */
  async restore(
    subscribe: (events: string[]) => Promise<ServerEnvelope>,
    onError: (error: RealtimeClientError) => void,
  ): Promise<void> {
    const events = this.list();
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < events.length; i += MAX_EVENTS_PER_REQUEST) {
      const chunk = events.slice(i, i + MAX_EVENTS_PER_REQUEST);
      sends.push(
        subscribe(chunk).then(
          (envelope) => {
            const ack = subscriptionAck(envelope.data);
            if (!ack) {
              onError(
                malformedReply(
                  envelope.type,
                  envelope.in_reply_to,
                  `${chunk.length} events not restored`,
                ),
              );
              return;
            }
            // Events the server no longer accepts are forgotten rather than retried forever.
            this.delete(ack.invalid_events);
          },
          (error: unknown) => {
            // After close() the app hears nothing more.
            if (
              error instanceof RealtimeClientError &&
              error.code !== ClientErrorCode.CLIENT_CLOSED
            ) {
              onError(error);
            }
          },
        ),
      );
    }
    await Promise.all(sends);
  }
}
