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
 * Most positions kept: 10 `resume` requests of {@link MAX_RESUME_POSITIONS}. Unbounded, a client
 * that saw 20,000 streams sent 200 after a reconnect, past the server's rate limit (100 a minute).
 */
export const MAX_POSITIONS = 1_000;

/** Most names of evicted streams kept until the next resume reports them. */
export const MAX_EVICTED = 10_000;

/**
 * The last position seen per stream (PROTOCOL.md section 9): what a reconnect resumes from, and
 * what tells a message already seen (same epoch, offset not after the last) from a new one. Only
 * the {@link MAX_POSITIONS} most recently updated streams are kept; the others are evicted: not
 * resumed, and reported by the next resume as not recovered.
 */
export class StreamPositions {
  /** In update order, oldest first (a Map iterates in insertion order). */
  private readonly last = new Map<string, StreamPosition>();
  private readonly evictedStreams = new Set<string>();

  constructor(
    private readonly maxPositions = MAX_POSITIONS,
    private readonly maxEvicted = MAX_EVICTED,
  ) {}

  get size(): number {
    return this.last.size;
  }

  list(): StreamPosition[] {
    return [...this.last.values()];
  }

  /** Streams evicted since {@link takeEvicted} was last called, that a resume cannot recover. */
  get evicted(): number {
    return this.evictedStreams.size;
  }

  /** The evicted streams, forgotten here: the caller reports them. */
  takeEvicted(): string[] {
    const streams = [...this.evictedStreams];
    this.evictedStreams.clear();
    return streams;
  }

  /** Puts back what {@link takeEvicted} returned, when it could not be reported after all. */
  restoreEvicted(streams: readonly string[]): void {
    for (const stream of streams) {
      if (!this.last.has(stream)) this.evictedStreams.add(stream);
    }
    this.trimEvicted();
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
    this.update(position);
    return true;
  }

  /** Follows nothing any more (the streams were given up and reported). */
  clear(): void {
    this.last.clear();
    this.evictedStreams.clear();
  }

  /** Stops following the streams of these events (after an unsubscribe). */
  forgetEvents(events: readonly string[]): void {
    for (const event of events) {
      this.last.delete(`event:${event}`);
      this.evictedStreams.delete(`event:${event}`);
    }
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
        this.update({ stream: result.stream, epoch: result.epoch, offset: result.offset ?? '0' });
      }
    }
  }

  /** Moves the stream to the newest end, evicting the least recently updated past the bound. */
  private update(position: StreamPosition): void {
    this.last.delete(position.stream);
    this.last.set(position.stream, position);
    this.evictedStreams.delete(position.stream);
    for (const stream of this.last.keys()) {
      if (this.last.size <= this.maxPositions) break;
      this.last.delete(stream);
      this.evictedStreams.add(stream);
    }
    this.trimEvicted();
  }

  /** Names only, yet they must be bounded too: past the bound the oldest go unreported. */
  private trimEvicted(): void {
    for (const stream of this.evictedStreams) {
      if (this.evictedStreams.size <= this.maxEvicted) break;
      this.evictedStreams.delete(stream);
    }
  }
}
