import {
  compareOffsets,
  isOffset,
  type ResumeStreamResult,
  type ServerEnvelope,
  type StreamPosition,
} from '../protocol/index.js';

/** The stream position a message carries, when it carries a whole one. */
export function positionOf(envelope: ServerEnvelope): StreamPosition | undefined {
  const { stream, offset, epoch } = envelope;
  if (typeof stream !== 'string' || typeof epoch !== 'string' || !isOffset(offset)) {
    return undefined;
  }
  return { stream, offset, epoch };
}

/**
 * The last position seen per stream (PROTOCOL.md section 9): what a reconnect resumes from, and
 * what tells a message already seen (same epoch, offset not after the last) from a new one.
 */
export class StreamPositions {
  private readonly last = new Map<string, StreamPosition>();

  get size(): number {
    return this.last.size;
  }

  list(): StreamPosition[] {
    return [...this.last.values()];
  }

  /** Records the message's position; false when it was seen already (a duplicate to drop). */
  accept(position: StreamPosition): boolean {
    const known = this.last.get(position.stream);
    if (
      known &&
      known.epoch === position.epoch &&
      compareOffsets(position.offset, known.offset) <= 0
    ) {
      return false;
    }
    this.last.set(position.stream, position);
    return true;
  }

  /** Stops following the streams of these events (after an unsubscribe). */
  forgetEvents(events: readonly string[]): void {
    for (const event of events) this.last.delete(`event:${event}`);
  }

  /**
   * Takes in what a resume said: a stream that cannot be read any more is forgotten; one with a
   * new history goes on from that history's last offset (the app reloads what came before).
   */
  settle(results: readonly ResumeStreamResult[]): void {
    for (const result of results) {
      if (result.reason === 'not_visible') {
        this.last.delete(result.stream);
      } else if (result.reason === 'epoch_changed' && result.epoch !== undefined) {
        this.last.set(result.stream, {
          stream: result.stream,
          epoch: result.epoch,
          offset: result.offset ?? '0',
        });
      }
    }
  }
}
