import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import {
  ALL_STREAM,
  compareOffsets,
  eventStream,
  type ResumeFailure,
  type ResumeStreamResult,
  roomStream,
  ServerMessageType,
  type StreamResyncData,
  userStream,
} from '../../protocol/index.js';
import { LocalDelivery } from '../bus/local-delivery.js';
import { RealtimeBus } from '../bus/realtime-bus.js';
import { type GapRecovery, RedisBus } from '../bus/redis-bus.js';
import { SocketWriter } from '../gateway/socket-writer.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import { MessageHistory } from './message-history.js';
import { type CatchUpRead, RedisMessageHistory } from './redis-message-history.js';
import { mayRead, streamReaders } from './stream-targets.js';
import { StreamWatermark } from './stream-watermark.js';

/** Streams read per script, so that one read does not hold Redis for long. */
const STREAMS_PER_READ = 200;

/**
 * After this instance's Redis subscription dropped (a Redis restart, a killed connection), finds
 * in the shared history what its clients missed meanwhile and delivers it, in order and before
 * what arrived since; a stream it cannot fill (epoch changed, gap older than the history) is
 * reported to its readers with `stream.resync`. Never a silent gap (section 9).
 */
@Injectable()
export class StreamCatchUp implements GapRecovery, OnModuleInit {
  private readonly logger = new Logger('RealtimeStreamCatchUp');
  private history: RedisMessageHistory | undefined;
  private bus: RedisBus | undefined;
  /** Messages delivered from the history after gaps, and streams reported lost (for stats). */
  filled = 0;
  unrecovered = 0;

  constructor(
    bus: RealtimeBus,
    @Inject(MessageHistory) history: MessageHistory | null,
    private readonly registry: ConnectionRegistry,
    private readonly delivery: LocalDelivery,
    private readonly writer: SocketWriter,
    private readonly watermark: StreamWatermark,
  ) {
    if (bus instanceof RedisBus && history instanceof RedisMessageHistory) {
      this.bus = bus;
      this.history = history;
    }
  }

  onModuleInit(): void {
    if (!this.bus || !this.history) return;
    this.watermark.enabled = true;
    this.bus.useHistory(this.history, this);
  }

  async recover(afterGap: boolean): Promise<void> {
    const history = this.history!;
    if (!afterGap) {
      // Subscribed for the first time: from now on, whatever comes is received.
      if (this.watermark.epoch === undefined) {
        const { epoch, nowMs } = await history.readMissed([], '');
        this.watermark.reset(epoch, nowMs);
      }
      return;
    }
    const known = this.watermark.epoch ?? '';
    if (this.watermark.lost) return this.recoverUnknownStart(known);
    const streams = this.localStreams();
    const reads: CatchUpRead[] = [];
    let current = { epoch: known, nowMs: 0 };
    for (let i = 0; i === 0 || i < streams.length; i += STREAMS_PER_READ) {
      const starts = streams.slice(i, i + STREAMS_PER_READ).map((s) => this.watermark.startOf(s));
      const read = await history.readMissed(starts, known);
      current = read;
      reads.push(...read.streams);
    }
    // Whatever was published before these reads is now held here, or was delivered before.
    if (!(await this.bus!.barrier())) throw new Error('the subscription dropped again');
    const epochChanged = current.epoch !== known;
    if (epochChanged) this.watermark.reset(current.epoch, 0);
    const held = this.bus!.heldFirstOffsets();
    const lost: ResumeStreamResult[] = [];
    let delivered = 0;
    for (const read of reads) {
      const replayed = this.deliverMissed(read, current.epoch, held.get(read.stream));
      delivered += replayed;
      if (!read.complete) {
        const reason = epochChanged ? 'epoch_changed' : 'gap_too_old';
        lost.push({
          stream: read.stream,
          recovered: false,
          replayed,
          reason,
          epoch: current.epoch,
        });
      }
    }
    if (epochChanged && delivered === 0) this.watermark.reset(current.epoch, current.nowMs);
    this.filled += delivered;
    this.unrecovered += lost.length;
    this.logger.log({
      event: 'stream.gap_filled',
      streams: streams.length,
      delivered,
      unrecovered_streams: lost.length,
      epoch_changed: epochChanged,
    });
    this.notifyLost(lost);
  }

  overflowed(): void {
    this.logger.warn({ event: 'stream.gap_overflow' });
    this.notifyLost(this.allLost('gap_too_old'));
  }

  abandoned(positionKept: boolean): void {
    // Without a message since, the next gap's reads would also bring this one's, told lost now.
    if (!positionKept) this.watermark.lost = true;
    const lost = this.allLost('history_unavailable');
    this.unrecovered += lost.length;
    this.logger.warn({ event: 'stream.gap_abandoned', unrecovered_streams: lost.length });
    this.notifyLost(lost);
  }

  /**
   * A gap after an abandoned one, with nothing received between them: what is in the history
   * after the last message received belongs to both, so none of it is delivered; every stream
   * is told lost again and the position starts over at the history's current time.
   */
  private async recoverUnknownStart(known: string): Promise<void> {
    const { epoch, nowMs } = await this.history!.readMissed([], known);
    if (!(await this.bus!.barrier())) throw new Error('the subscription dropped again');
    this.watermark.reset(epoch, nowMs);
    const lost = this.allLost(epoch === known ? 'history_unavailable' : 'epoch_changed');
    this.unrecovered += lost.length;
    this.logger.warn({ event: 'stream.gap_unfillable', unrecovered_streams: lost.length });
    this.notifyLost(lost);
  }

  /** Every local stream, reported not recovered for `reason`. */
  private allLost(reason: ResumeFailure): ResumeStreamResult[] {
    return this.localStreams().map((stream) => ({
      stream,
      recovered: false,
      replayed: 0,
      reason,
      epoch: this.watermark.epoch,
    }));
  }

  /** Entries before the first held one of the stream: from there on, the held ones follow. */
  private deliverMissed(read: CatchUpRead, epoch: string, firstHeld: string | undefined): number {
    let replayed = 0;
    for (const entry of read.entries) {
      if (firstHeld !== undefined && compareOffsets(entry.offset, firstHeld) >= 0) break;
      const target = streamReaders(read.stream, entry.exceptUserId);
      if (!target) break;
      const position = { stream: read.stream, offset: entry.offset, epoch };
      const message = { id: entry.id, type: entry.type, frame: entry.frame, target, position };
      // Also in the history twice (a publish retried after a lost reply), or delivered before.
      if (this.bus!.delivered(message)) continue;
      this.bus!.noteRecovered(message, this.delivery.deliver(message));
      replayed++;
    }
    return replayed;
  }

  /** Every stream some connection of this instance reads. */
  private localStreams(): string[] {
    if (this.registry.size === 0) return [];
    return [
      ALL_STREAM,
      ...this.registry.userIds().map(userStream),
      ...Object.keys(this.registry.subscriptionCounts()).map(eventStream),
      ...Object.keys(this.registry.roomCounts()).map(roomStream),
    ];
  }

  /** Tells each connection which of the streams it reads lost messages. */
  private notifyLost(lost: readonly ResumeStreamResult[]): void {
    if (lost.length === 0) return;
    for (const connection of this.registry.all()) {
      const streams = lost.filter(({ stream }) => mayRead(connection, stream));
      if (streams.length === 0) continue;
      const data: StreamResyncData = { streams };
      this.writer.send(connection, ServerMessageType.STREAM_RESYNC, data);
    }
  }
}
