import type { OutboundMessage } from './delivery-target.js';

/**
 * Messages that arrived from the bus while this instance is filling a gap in what it received:
 * kept in arrival order, to be delivered after what was missed, so that no stream goes out of
 * order. Bounded in count and in the characters of their frames (a message from the channel may
 * be megabytes): past either, that message and every later one are dropped, so that what is kept
 * is what came first, and the hold reports it.
 */
export class InboundHold {
  private held: OutboundMessage[] | undefined;
  private chars = 0;
  private overflowed = false;

  constructor(
    private readonly limit: number,
    private readonly limitChars: number,
  ) {}

  get holding(): boolean {
    return this.held !== undefined;
  }

  /** Messages kept so far. */
  get size(): number {
    return this.held?.length ?? 0;
  }

  start(): void {
    this.held ??= [];
  }

  /** Keeps the message when holding; false when it should be delivered now. */
  offer(message: OutboundMessage): boolean {
    if (!this.held) return false;
    const chars = this.chars + message.frame.length;
    if (this.overflowed || this.held.length >= this.limit || chars > this.limitChars) {
      this.overflowed = true;
    } else {
      this.held.push(message);
      this.chars = chars;
    }
    return true;
  }

  /** The first held offset of each stream: older messages of it were missed, not held. */
  firstOffsets(): Map<string, string> {
    const first = new Map<string, string>();
    for (const { position } of this.held ?? []) {
      if (position && !first.has(position.stream)) first.set(position.stream, position.offset);
    }
    return first;
  }

  /** Ends the hold; what was kept, oldest first, and whether some had to be dropped. */
  release(): { messages: OutboundMessage[]; overflowed: boolean } {
    const released = { messages: this.held ?? [], overflowed: this.overflowed };
    this.held = undefined;
    this.chars = 0;
    this.overflowed = false;
    return released;
  }
}
