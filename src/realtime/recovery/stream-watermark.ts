import { Injectable } from '@nestjs/common';
import type { StreamPosition } from '../../protocol/index.js';
import type { CatchUpStart } from './redis-message-history.js';

/**
 * How far this instance got in what the bus carried, for an instance that must find what it
 * missed after its Redis subscription dropped. Redis publishes stream messages in the order their
 * scripts ran, and their offsets are Redis time (`<ms>-<seq>`), so everything missed has a time
 * at or after the last message received, in any stream. Only the streams received within that
 * last millisecond need their own offset, so that none is delivered twice.
 */
@Injectable()
export class StreamWatermark {
  /** Off unless a shared history with a Redis bus is in use. */
  enabled = false;
  /** The history's epoch as last seen; undefined until known. */
  epoch: string | undefined;
  /**
   * A gap was given up (its messages were not read) and nothing was received since: the next gap
   * cannot be told apart from that one in the history, so it is not filled either.
   */
  lost = false;
  private ms = 0;
  private latest = new Map<string, string>();

  /** A message this instance received from the bus (or filled in from the history). */
  observe(position: StreamPosition): void {
    const dash = position.offset.indexOf('-');
    const ms = Number(dash < 0 ? position.offset : position.offset.slice(0, dash));
    this.lost = false;
    if (position.epoch !== this.epoch || ms > this.ms) {
      this.epoch = position.epoch;
      this.ms = ms;
      this.latest = new Map([[position.stream, position.offset]]);
    } else if (ms === this.ms) {
      this.latest.set(position.stream, position.offset);
    }
  }

  /** Starts over at Redis time `ms` in `epoch`: nothing received yet. */
  reset(epoch: string, ms: number): void {
    this.epoch = epoch;
    this.ms = ms;
    this.latest = new Map();
    this.lost = false;
  }

  /** Where to read `stream` from to find what was missed. */
  startOf(stream: string): CatchUpStart {
    const seen = this.latest.get(stream);
    return seen === undefined ? { stream, fromMs: this.ms } : { stream, after: seen };
  }
}
