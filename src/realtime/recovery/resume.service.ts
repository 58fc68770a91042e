import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import {
  compareOffsets,
  type ResumeResultData,
  type ResumeStreamResult,
  type StreamPosition,
} from '../../protocol/index.js';
import { SocketWriter } from '../gateway/socket-writer.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { type HistoryRead, MessageHistory } from './message-history.js';
import { withPosition } from './positioned-frame.js';
import { mayRead } from './stream-targets.js';

/** While the send buffer holds more than this share of `maxBufferedBytes`, a replay waits. */
const REPLAY_BUFFER_SHARE = 0.5;
/** How often a waiting replay looks at the send buffer again, ms. */
const DRAIN_POLL_MS = 5;

/**
 * Answers `resume` (PROTOCOL.md section 9): replays, per stream the connection may read, what
 * came after the client's offset, in order, never what this connection already got live, and
 * paced by its send buffer; then says per stream whether the gap was recovered in full.
 */
@Injectable()
export class ResumeService implements OnApplicationShutdown {
  private readonly logger = new Logger('RealtimeResume');

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    @Inject(MessageHistory) private readonly history: MessageHistory | null,
    private readonly writer: SocketWriter,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.history?.close();
  }

  /** False when the module runs without history: `resume` is then refused. */
  get enabled(): boolean {
    return this.history !== null && this.options.history !== false;
  }

  async resume(
    connection: RealtimeConnection,
    positions: readonly StreamPosition[],
  ): Promise<ResumeResultData> {
    const streams: ResumeStreamResult[] = [];
    const seen = new Set<string>();
    const open = this.windowOpen(connection);
    // One wait of closeGraceMs per resume, not per stream: once a client has shown it does not
    // drain, later streams replay what fits at once, or a resume of many streams would hold its
    // replay loop for that many times the grace.
    let drainWaitMs = this.options.closeGraceMs;
    for (const position of positions) {
      if (seen.has(position.stream)) continue;
      seen.add(position.stream);
      const result = await this.resumeStream(connection, position, open, drainWaitMs);
      if (result.reason === 'too_slow') drainWaitMs = 0;
      streams.push(result);
    }
    // The live offsets stay until the resume window closes (ConnectionSupervisor): a later resume
    // of the same stream, a client retrying one that it thought lost, stops at them too.
    return { recovered: streams.every((s) => s.recovered), streams };
  }

  private async resumeStream(
    connection: RealtimeConnection,
    position: StreamPosition,
    windowOpen: boolean,
    drainWaitMs: number,
  ): Promise<ResumeStreamResult> {
    const { stream } = position;
    if (!windowOpen) return { stream, recovered: false, replayed: 0, reason: 'too_late' };
    if (!mayRead(connection, stream)) {
      return { stream, recovered: false, replayed: 0, reason: 'not_visible' };
    }
    const history = this.history!;
    const limit = this.options.history === false ? 0 : this.options.history.maxMessages;
    let read: HistoryRead;
    try {
      read = await history.readAfter(stream, position.offset, position.epoch, limit);
    } catch (error) {
      // Redis unreachable or refusing the read: the answer says so, per stream, rather than
      // failing the whole resume as an internal error; the client reloads that stream's state.
      this.logger.warn({
        event: 'resume.history_unavailable',
        connection_id: connection.id,
        stream,
        error: String(error),
      });
      return { stream, recovered: false, replayed: 0, reason: 'history_unavailable' };
    }
    const current = {
      epoch: read.epoch,
      ...(read.lastOffset === undefined ? {} : { offset: read.lastOffset }),
    };
    if (read.epoch !== position.epoch) {
      return { stream, recovered: false, replayed: 0, reason: 'epoch_changed', ...current };
    }
    const stopAt = connection.firstLiveOffsets?.get(stream);
    // What an earlier resume replayed to this connection is not sent twice.
    const replayedBefore = connection.replayedUpTo?.get(stream);
    let replayed = 0;
    let cutShort = false;
    for (const entry of read.entries) {
      // From here on the connection got every message live.
      if (stopAt !== undefined && compareOffsets(entry.offset, stopAt) >= 0) break;
      if (entry.exceptUserId !== undefined && entry.exceptUserId === connection.userId) continue;
      if (replayedBefore !== undefined && compareOffsets(entry.offset, replayedBefore) <= 0)
        continue;
      const frame = Buffer.from(
        withPosition(entry.frame, { stream, offset: entry.offset, epoch: read.epoch }),
      );
      // A client that does not drain (or a closing connection) ends the replay: a gap is left.
      if (
        !(await this.roomFor(connection, frame.length, drainWaitMs)) ||
        !this.writer.write(connection, frame)
      ) {
        cutShort = true;
        break;
      }
      replayed++;
      (connection.replayedUpTo ??= new Map()).set(stream, entry.offset);
    }
    const complete = read.complete && !cutShort && connection.socket.readyState === WebSocket.OPEN;
    if (complete) return { stream, recovered: true, replayed, ...current };
    const reason = read.complete && cutShort ? 'too_slow' : 'gap_too_old';
    return { stream, recovered: false, replayed, reason, ...current };
  }

  private windowOpen(connection: RealtimeConnection): boolean {
    const { history } = this.options;
    if (!history || !connection.resumeOpen) return false;
    return (
      performance.timeOrigin + performance.now() - connection.connectedAt <= history.resumeWindowMs
    );
  }

  /**
   * Waits until the send buffer has room for `bytes` under the replay share; false when the
   * connection closed or did not drain within `waitMs` (it is a slow consumer then).
   */
  private async roomFor(
    connection: RealtimeConnection,
    bytes: number,
    waitMs: number,
  ): Promise<boolean> {
    const limit = this.options.maxBufferedBytes * REPLAY_BUFFER_SHARE;
    const deadline = Date.now() + waitMs;
    while (
      connection.socket.bufferedAmount + bytes > limit &&
      connection.socket.bufferedAmount > 0
    ) {
      if (connection.closing || Date.now() >= deadline) return false;
      await sleep(DRAIN_POLL_MS);
    }
    return !connection.closing;
  }
}
