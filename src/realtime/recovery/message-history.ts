import type { StreamPosition } from '../../protocol/index.js';

/** What the history keeps of one message: enough to write it again, to the same recipients. */
export interface HistoryRecord {
  id: string;
  type: string;
  /** The server envelope as JSON, without its stream position. */
  frame: string;
  /** For `all`: the user the broadcast left out, who must not get it in a replay either. */
  exceptUserId?: string;
}

export interface HistoryEntry extends HistoryRecord {
  offset: string;
}

export interface HistoryRead {
  /** The stream's current epoch. */
  epoch: string;
  /** Entries after the asked offset, oldest first (at most the asked limit). */
  entries: HistoryEntry[];
  /**
   * True when nothing between the asked offset and the first entry was dropped, so that the
   * entries are the whole gap (as far as the limit reached); false when older messages are gone
   * or the epoch is not the asked one (then `entries` is empty).
   */
  complete: boolean;
  /** The last offset the stream has, when it has any. */
  lastOffset?: string;
}

/**
 * Per-stream history of sent messages, bounded by age and count, that a reconnecting client
 * replays from (PROTOCOL.md section 9). In memory for one instance; Redis Streams for several.
 */
export abstract class MessageHistory {
  /** Appends a message; resolves to its position. Appends to one stream keep their order. */
  abstract append(stream: string, record: HistoryRecord): Promise<StreamPosition>;
  /** Reads what came after `offset` in `stream` if `epoch` is still the stream's epoch. */
  abstract readAfter(
    stream: string,
    offset: string,
    epoch: string,
    limit: number,
  ): Promise<HistoryRead>;
  abstract close(): Promise<void>;
}
