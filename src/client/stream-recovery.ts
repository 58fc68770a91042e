import {
  MAX_RESUME_POSITIONS,
  type ResumeResultData,
  type ResumeStreamResult,
  type ServerEnvelope,
  ServerMessageType,
  type StreamResyncData,
} from '../protocol/index.js';
import { ClientErrorCode, RealtimeClientError } from './errors.js';
import { malformedReply, streamResults } from './reply-shapes.js';
import { ResumeGate } from './resume-gate.js';
import { positionOf, StreamPositions } from './stream-positions.js';

/** Most stream messages held while a resume is answered; past it they are delivered at once. */
const MAX_HELD = 10_000;

export interface StreamRecoveryHooks {
  /** Sends `resume` with these positions past the outbox; resolves with `resume.result`. */
  requestResume(positions: ServerEnvelope['data']): Promise<ServerEnvelope>;
  /** Hands a message to the app (listeners of `message` and of its type). */
  deliver(envelope: ServerEnvelope): void;
  resumed(result: ResumeResultData): void;
  resync(streams: ResumeStreamResult[]): void;
  error(error: RealtimeClientError): void;
}

/**
 * Nothing lost, nothing twice (PROTOCOL.md section 9): follows the position of every stream,
 * drops messages seen already, and after a reconnect asks the server to replay the gap, holding
 * live messages meanwhile so that each stream reaches the app in offset order.
 */
export class StreamRecovery {
  private readonly positions = new StreamPositions();
  private readonly gate = new ResumeGate(MAX_HELD);

  constructor(
    private readonly enabled: boolean,
    private readonly hooks: StreamRecoveryHooks,
  ) {}

  /** A server message: delivered, held for the resume in progress, or dropped as seen. */
  receive(envelope: ServerEnvelope): void {
    if (envelope.type === ServerMessageType.STREAM_RESYNC) return this.serverLost(envelope);
    const position = positionOf(envelope);
    if (!position) return this.hooks.deliver(envelope);
    if (this.gate.hold(envelope, position)) return;
    if (this.positions.accept(position)) this.hooks.deliver(envelope);
  }

  /**
   * The server lost messages of these streams on its side (section 9, `stream.resync`): follow
   * each from its new position on, and tell the app to reload.
   */
  private serverLost(envelope: ServerEnvelope): void {
    const streams = streamResults((envelope.data as Partial<StreamResyncData>).streams);
    if (!streams) {
      this.hooks.error(malformedReply(ServerMessageType.STREAM_RESYNC, undefined, UNUSABLE));
      return;
    }
    if (streams.length === 0) return;
    this.positions.settle(streams);
    this.hooks.resync(streams);
  }

  forgetEvents(events: readonly string[]): void {
    this.positions.forgetEvents(events);
  }

  /**
   * A message over `maxMessageSize` was refused unread, so its stream is not known. Refused while
   * a resume replays, it is a replayed one, and every later resume would replay it into the same
   * limit, reconnect after reconnect: every stream followed so far is given up and reported in
   * `resync`, and the next connection resumes nothing. Refused live, it may have no stream at all:
   * the next resume tells (if it replays the message, this comes again, during that resume).
   */
  refusedTooLarge(): void {
    if (!this.gate.holding) return;
    const streams = [
      ...this.positions.list().map(({ stream }) => stream),
      ...this.positions.takeEvicted(),
    ];
    this.positions.clear();
    if (streams.length > 0) this.hooks.resync(streams.map(notRecovered));
  }

  /**
   * At `connection.established` of a reconnect: from now on stream messages wait for the
   * resume, so that the positions it asks from are the ones the previous connection reached.
   */
  begin(): void {
    const known = this.positions.size + this.positions.evicted;
    if (this.enabled && known > 0 && !this.gate.holding) this.gate.start();
  }

  /** After {@link begin} and the subscriptions restored: replays what was missed. */
  async resume(): Promise<void> {
    if (!this.gate.holding) return;
    try {
      await this.replayGap();
    } finally {
      // Whatever went wrong, live messages must not stay held for good.
      if (this.gate.holding) this.release();
    }
  }

  private async replayGap(): Promise<void> {
    const positions = this.positions.list();
    // Taken now: streams evicted from here on, by this connection's messages, lost nothing yet.
    const evicted = this.positions.takeEvicted();
    const streams: ResumeStreamResult[] = [];
    try {
      for (let i = 0; i < positions.length; i += MAX_RESUME_POSITIONS) {
        const chunk = positions.slice(i, i + MAX_RESUME_POSITIONS);
        const reply = await this.hooks.requestResume({ positions: chunk });
        const results = streamResults((reply.data as Partial<ResumeResultData>).streams);
        if (!results) {
          throw malformedReply(ServerMessageType.RESUME_RESULT, reply.in_reply_to, UNUSABLE);
        }
        streams.push(...results);
      }
    } catch (error) {
      if (
        error instanceof RealtimeClientError &&
        (error.code === ClientErrorCode.CONNECTION_CLOSED ||
          error.code === ClientErrorCode.CLIENT_CLOSED)
      ) {
        // The next connection resumes from the same positions: what was held comes again.
        // After close() the app hears nothing more.
        this.positions.restoreEvicted(evicted);
        this.gate.release();
        return;
      }
      // Without an answer nothing is known about the gap: the app must reload.
      if (error instanceof RealtimeClientError) this.hooks.error(error);
      this.release();
      const unknown = [...positions.map(({ stream }) => stream), ...evicted].map(notRecovered);
      this.hooks.resumed({ recovered: false, streams: unknown });
      this.hooks.resync(unknown);
      return;
    }
    this.release();
    this.positions.settle(streams);
    // Streams evicted from the positions were not asked for: their gap is unknown, as above.
    streams.push(...evicted.map(notRecovered));
    const missed = streams.filter((stream) => !stream.recovered);
    this.hooks.resumed({ recovered: missed.length === 0, streams });
    if (missed.length > 0) this.hooks.resync(missed);
  }

  private release(): void {
    for (const envelope of this.gate.release()) {
      const position = positionOf(envelope);
      if (!position || this.positions.accept(position)) this.hooks.deliver(envelope);
    }
  }
}

const UNUSABLE = 'its streams cannot be used';

function notRecovered(stream: string): ResumeStreamResult {
  return { stream, recovered: false, replayed: 0 };
}
