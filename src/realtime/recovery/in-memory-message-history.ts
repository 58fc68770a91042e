import { randomUUID } from 'node:crypto';
import type { StreamPosition } from '../../protocol/index.js';
import {
  type HistoryEntry,
  type HistoryRead,
  type HistoryRecord,
  MessageHistory,
} from './message-history.js';

export interface HistoryBounds {
  /** Messages kept per stream. */
  maxMessages: number;
  /** Age after which a message is dropped, in milliseconds. */
  maxAgeMs: number;
  /** Streams kept at once; past it, the stream written least recently is dropped whole. */
  maxStreams: number;
  /** Frame bytes kept in all; past it, streams are dropped whole, least recently written first. */
  maxBytes: number;
}

interface StoredEntry extends HistoryEntry {
  seq: number;
  at: number;
}

interface Stream {
  entries: StoredEntry[];
  /** Highest offset no longer kept: a gap reaching below it cannot be replayed in full. */
  droppedUpTo: number;
  bytes: number;
}

/**
 * One process's history. Offsets come from one counter for every stream, so that they never go
 * back within the epoch even when a stream is dropped and written again; the epoch is made at
 * start, so a restart tells every client that older offsets are gone. Streams sit in a Map in
 * write order, which makes the least recently written one the first key.
 */
export class InMemoryMessageHistory extends MessageHistory {
  private readonly epoch = randomUUID().slice(0, 8);
  private readonly streams = new Map<string, Stream>();
  private seq = 0;
  /** Highest offset of any stream dropped whole. */
  private evictedUpTo = 0;
  private bytes = 0;
  /** Drops streams whose every message expired: memory follows activity, not past users. */
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly bounds: HistoryBounds,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.sweep = setInterval(() => this.dropExpiredStreams(), Math.max(1000, bounds.maxAgeMs / 2));
    this.sweep.unref();
  }

  append(name: string, record: HistoryRecord): Promise<StreamPosition> {
    let stream = this.streams.get(name);
    if (stream) {
      this.streams.delete(name); // set again below: the Map stays in write order
    } else {
      this.evictWhile(() => this.streams.size >= this.bounds.maxStreams);
      // A stream dropped earlier may have had messages after any offset a client holds.
      stream = { entries: [], droppedUpTo: this.evictedUpTo, bytes: 0 };
    }
    this.streams.set(name, stream);
    const seq = ++this.seq;
    const at = this.now();
    stream.entries.push({ ...record, offset: String(seq), seq, at });
    stream.bytes += record.frame.length;
    this.bytes += record.frame.length;
    this.trim(stream, at);
    // The stream just written is the last to go: it is at the end of the Map.
    this.evictWhile(() => this.bytes > this.bounds.maxBytes && this.streams.size > 1);
    return Promise.resolve({ stream: name, offset: String(seq), epoch: this.epoch });
  }

  readAfter(name: string, offset: string, epoch: string, limit: number): Promise<HistoryRead> {
    const after = /^\d{1,15}$/.test(offset) ? Number(offset) : Number.NaN;
    const stream = this.streams.get(name);
    if (stream) this.trim(stream, this.now());
    const lastOffset = stream?.entries.at(-1)?.offset;
    const base = { epoch: this.epoch, ...(lastOffset === undefined ? {} : { lastOffset }) };
    if (epoch !== this.epoch || Number.isNaN(after)) {
      return Promise.resolve({ ...base, entries: [], complete: false });
    }
    if (!stream) {
      return Promise.resolve({ ...base, entries: [], complete: after >= this.evictedUpTo });
    }
    const entries: HistoryEntry[] = [];
    for (const entry of stream.entries) {
      if (entry.seq <= after) continue;
      if (entries.length >= limit) break;
      const { seq: _seq, at: _at, ...kept } = entry;
      entries.push(kept);
    }
    return Promise.resolve({ ...base, entries, complete: stream.droppedUpTo <= after });
  }

  close(): Promise<void> {
    clearInterval(this.sweep);
    this.streams.clear();
    return Promise.resolve();
  }

  private trim(stream: Stream, now: number): void {
    const oldest = now - this.bounds.maxAgeMs;
    let drop = Math.max(0, stream.entries.length - this.bounds.maxMessages);
    while (drop < stream.entries.length && stream.entries[drop]!.at < oldest) drop++;
    if (drop === 0) return;
    stream.droppedUpTo = stream.entries[drop - 1]!.seq;
    for (const entry of stream.entries.splice(0, drop)) {
      stream.bytes -= entry.frame.length;
      this.bytes -= entry.frame.length;
    }
  }

  /**
   * Streams are in write order, so the expired ones are at the front: stop at the first stream
   * whose last message is still young.
   */
  private dropExpiredStreams(): void {
    const oldest = this.now() - this.bounds.maxAgeMs;
    this.evictWhile(() => {
      const first = this.streams.values().next().value;
      return first !== undefined && (first.entries.at(-1)?.at ?? 0) < oldest;
    });
  }

  /** Drops whole streams, least recently written first, while `over()` holds. */
  private evictWhile(over: () => boolean): void {
    while (over()) {
      const [name, stream] = this.streams.entries().next().value ?? [];
      if (name === undefined || stream === undefined) return;
      this.evictedUpTo = Math.max(this.evictedUpTo, stream.entries.at(-1)?.seq ?? 0);
      this.bytes -= stream.bytes;
      this.streams.delete(name);
    }
  }
}
