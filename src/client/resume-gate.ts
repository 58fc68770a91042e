import { compareOffsets, type ServerEnvelope, type StreamPosition } from '../protocol/index.js';

interface Held {
  envelope: ServerEnvelope;
  position: StreamPosition;
}

/**
 * Holds the stream messages that arrive while a resume is answered: live messages may come
 * before the replay of older ones. On release each stream's messages come out in offset order,
 * in the slots that stream's messages took, so other streams keep their arrival order.
 */
export class ResumeGate {
  private held: Held[] | undefined;

  constructor(private readonly maxHeld: number) {}

  get holding(): boolean {
    return this.held !== undefined;
  }

  start(): void {
    this.held = [];
  }

  /** False when the gate is open, or full (the caller delivers it at once, as without a gate). */
  hold(envelope: ServerEnvelope, position: StreamPosition): boolean {
    if (!this.held || this.held.length >= this.maxHeld) return false;
    this.held.push({ envelope, position });
    return true;
  }

  /** Opens the gate; returns what it held, ordered by offset within each stream. */
  release(): ServerEnvelope[] {
    const held = this.held ?? [];
    this.held = undefined;
    const byStream = new Map<string, Held[]>();
    for (const item of held) {
      const list = byStream.get(item.position.stream) ?? [];
      list.push(item);
      byStream.set(item.position.stream, list);
    }
    for (const list of byStream.values()) {
      list.sort((a, b) => compareOffsets(a.position.offset, b.position.offset));
    }
    const next = new Map<string, number>();
    return held.map(({ position }) => {
      const index = next.get(position.stream) ?? 0;
      next.set(position.stream, index + 1);
      return byStream.get(position.stream)![index]!.envelope;
    });
  }
}
