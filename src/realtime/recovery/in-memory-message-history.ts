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

/** `entry` is what reads return: made once per append, never copied per read. */
interface StoredEntry {
  entry: HistoryEntry;
  seq: number;
  at: number;
}

interface Stream {
  /** Kept messages are `entries[head..]`; dropped ones leave in batches, not one shift per append. */
  entries: StoredEntry[];
  head: number;
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
  /** The stream appended to last, which is the Map's last key while it exists. */
  private lastWritten: string | undefined;
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
      // Set again below, so that the Map stays in write order (not needed when it is last already).
      if (name !== this.lastWritten) this.streams.delete(name);
    } else {
      this.evictWhile(() => this.streams.size >= this.bounds.maxStreams);
      // A stream dropped earlier may have had messages after any offset a client holds.
      stream = { entries: [], head: 0, droppedUpTo: this.evictedUpTo, bytes: 0 };
    }
    this.streams.set(name, stream);
    this.lastWritten = name;
    const seq = ++this.seq;
    const at = this.now();
    // Built field by field: `{ ...record, offset }` cost V8 several times as much.
    const entry: HistoryEntry = {
      id: record.id,
      type: record.type,
      frame: record.frame,
      offset: String(seq),
    };
    if (record.exceptUserId !== undefined) entry.exceptUserId = record.exceptUserId;
    stream.entries.push({ entry, seq, at });
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
    const lastOffset = stream && lastOf(stream)?.entry.offset;
    const base = { epoch: this.epoch, ...(lastOffset === undefined ? {} : { lastOffset }) };
    if (epoch !== this.epoch || Number.isNaN(after)) {
      return Promise.resolve({ ...base, entries: [], complete: false });
    }
    if (!stream) {
      return Promise.resolve({ ...base, entries: [], complete: after >= this.evictedUpTo });
    }
    const entries: HistoryEntry[] = [];
    for (let i = stream.head; i < stream.entries.length; i++) {
      const stored = stream.entries[i]!;
      if (stored.seq <= after) continue;
      if (entries.length >= limit) break;
      entries.push(stored.entry);
    }
    return Promise.resolve({ ...base, entries, complete: stream.droppedUpTo <= after });
  }

  close(): Promise<void> {
    clearInterval(this.sweep);
    this.streams.clear();
    return Promise.resolve();
  }

  private trim(stream: Stream, now: number): void {
    const { entries } = stream;
    const oldest = now - this.bounds.maxAgeMs;
    const start = stream.head;
    let head = Math.max(start, entries.length - this.bounds.maxMessages);
    while (head < entries.length && entries[head]!.at < oldest) head++;
    if (head === start) return;
    stream.droppedUpTo = entries[head - 1]!.seq;
    for (let i = start; i < head; i++) {
      stream.bytes -= entries[i]!.entry.frame.length;
      this.bytes -= entries[i]!.entry.frame.length;
    }
    stream.head = head;
    // Compacted in batches (a few copies per append, amortized, instead of a shift each time);
    // dropped frames stay reachable until then, at most an eighth more than what is kept.
    if (head >= COMPACT_AFTER && head * 8 >= entries.length) {
      stream.entries = entries.slice(head);
      stream.head = 0;
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
      return first !== undefined && (lastOf(first)?.at ?? 0) < oldest;
    });
  }

  /** Drops whole streams, least recently written first, while `over()` holds. */
  private evictWhile(over: () => boolean): void {
    while (over()) {
      const [name, stream] = this.streams.entries().next().value ?? [];
      if (name === undefined || stream === undefined) return;
      // Its trimmed messages count too: a gap below droppedUpTo was incomplete already.
      this.evictedUpTo = Math.max(this.evictedUpTo, stream.droppedUpTo, lastOf(stream)?.seq ?? 0);
      this.bytes -= stream.bytes;
      this.streams.delete(name);
    }
  }
}

const COMPACT_AFTER = 32;

function lastOf(stream: Stream): StoredEntry | undefined {
  return stream.head < stream.entries.length ? stream.entries.at(-1) : undefined;
}
