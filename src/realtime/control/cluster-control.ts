import type { OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { answersIncomplete, type RealtimeBus } from '../bus/realtime-bus.js';
import { monotonicNow } from '../monotonic-clock.js';
import { RealtimeSendError } from '../realtime-send.error.js';
import { RoomFullError } from '../registry/connection-registry.js';
import {
  CONTROL_TOPICS,
  connectionCloseOf,
  countOf,
  type JoinAnswer,
  joinAnswerOf,
  type RoomMember,
  roomRequestOf,
  userCloseOf,
} from './control-requests.js';
import type { ControlRedelivery } from './control-redelivery.js';
import type { LocalControl } from './local-control.js';
import type { UserRoomCatchUp } from './user-room-catch-up.js';

/**
 * What ending one connection wherever it lives came to: ended, here or by its owner
 * (`instanceId`), or not. Not ended and `unanswered`: an instance that may own it did not answer
 * in time or answered with an error, or the bus could not reach the others, so whether it exists
 * is not known; not ended and not `unanswered`: every instance asked answered, and none has it.
 */
export type ConnectionDisconnect =
  { disconnected: true; instanceId: string } | { disconnected: false; unanswered: boolean };

/**
 * The control methods of RealtimeService and the admin API over every instance: each acts here
 * first, at once (as it did alone), then asks the others over the bus and adds up what they did.
 * A connection id is asked of every other instance, and the wait ends with its owner's answer; a
 * user, of all of them. Instances that do not answer within the bus's request timeout are not
 * counted (nor waited for); while the bus cannot reach the others, the result is this
 * instance's alone.
 */
export class ClusterControl implements OnModuleInit, OnApplicationShutdown {
  constructor(
    private readonly bus: RealtimeBus,
    private readonly local: LocalControl,
    private readonly catchUp: UserRoomCatchUp,
    private readonly redelivery: ControlRedelivery,
  ) {}

  /** Answers the others' requests for this instance's connections. */
  onModuleInit(): void {
    this.bus.handle(CONTROL_TOPICS.disconnectConnection, (payload) => {
      const { connectionId, code, reason } = connectionCloseOf(payload);
      return this.local.disconnectConnection(connectionId, code, reason);
    });
    this.bus.handle(CONTROL_TOPICS.disconnectUser, (payload) => {
      const { userId, code, reason } = userCloseOf(payload);
      return this.local.disconnectUser(userId, code, reason);
    });
    this.bus.handle(CONTROL_TOPICS.join, (payload) => {
      const { room, member } = roomRequestOf(payload);
      if ('userId' in member) this.catchUp.markInUse();
      return this.local.join(room, member);
    });
    this.bus.handle(CONTROL_TOPICS.leave, (payload) => {
      const { room, member } = roomRequestOf(payload);
      return this.leaveHere(room, member);
    });
    this.catchUp.start();
    this.redelivery.start();
  }

  onApplicationShutdown(): void {
    this.redelivery.stop();
  }

  /** Ends the connection here, else has its owner end it; see {@link ConnectionDisconnect}. */
  async disconnectConnection(
    connectionId: string,
    code: number,
    reason: string,
  ): Promise<ConnectionDisconnect> {
    // No instance can have it: nobody is asked.
    if (typeof connectionId !== 'string') return { disconnected: false, unanswered: false };
    const disconnect = { connectionId, code, reason };
    const madeAt = monotonicNow();
    if (this.local.disconnectConnection(connectionId, code, reason)) {
      return { disconnected: true, instanceId: this.bus.instanceId };
    }
    const asked = await this.bus.request<unknown>(CONTROL_TOPICS.disconnectConnection, disconnect, {
      until: (answer) => answer === true,
    });
    const owner = asked.answers.find(({ answer }) => answer === true);
    if (owner) return { disconnected: true, instanceId: owner.instanceId };
    // Its owner may be an instance that did not answer, or one cut off for so long that its
    // lease lapsed (not asked): it still gets the disconnect once back.
    this.redelivery.disconnectSent(disconnect, asked, madeAt);
    return { disconnected: false, unanswered: answersIncomplete(asked) };
  }

  /** Connections of the user ended here and by every instance that answered. */
  async disconnectUser(userId: string, code: number, reason: string): Promise<number> {
    // Before the request, which may wait out the timeout: later connections are the user's new ones.
    const madeAt = monotonicNow();
    const here = this.local.disconnectUser(userId, code, reason);
    const disconnect = { userId, code, reason };
    const asked = await this.bus.request<unknown>(CONTROL_TOPICS.disconnectUser, disconnect);
    // Instances that did not answer get it once they can be reached (ControlRedelivery).
    this.redelivery.disconnectSent(disconnect, asked, madeAt);
    return asked.answers.reduce((total, { answer }) => total + countOf(answer), here);
  }

  /**
   * Connections that joined. Throws RoomFullError when the connection's owner, or an instance
   * where the user's connections did not fit, was at its limit; its `joined`: those that did.
   */
  async join(room: string, member: RoomMember): Promise<number> {
    if ('userId' in member) this.catchUp.markInUse();
    const here = this.local.join(room, member);
    if (!('userId' in member)) {
      const { connectionId } = member;
      const answer = here ?? (await this.askOwner(room, connectionId));
      if (answer && 'full' in answer) throw new RoomFullError(room, answer.full);
      return answer?.joined ?? 0;
    }
    const { answers } = await this.bus.request<unknown>(CONTROL_TOPICS.join, {
      room,
      member: { userId: member.userId },
    });
    let joined = 0;
    let fullAt: number | undefined;
    for (const answer of [here, ...answers.map((entry) => joinAnswerOf(entry.answer))]) {
      if (!answer) continue;
      if ('full' in answer) fullAt ??= answer.full;
      else joined += answer.joined;
    }
    if (fullAt !== undefined) throw new RoomFullError(room, fullAt, joined);
    return joined;
  }

  /** Connections that left, here and on every instance that answered. */
  async leave(room: string, member: RoomMember): Promise<number> {
    const here = this.leaveHere(room, member);
    if (!('userId' in member)) {
      const { connectionId } = member;
      if (here !== null || typeof connectionId !== 'string') return here ?? 0;
      const madeAt = monotonicNow();
      const asked = await this.bus.request<unknown>(
        CONTROL_TOPICS.leave,
        { room, member: { connectionId } },
        { until: isHere },
      );
      if (!asked.answers.some(({ answer }) => isHere(answer))) {
        // Its owner may be an instance that did not answer, or one whose lease lapsed in a cut
        // (not asked): it still gets the leave once back (ControlRedelivery).
        this.redelivery.left({ connectionId }, room, madeAt);
        this.redelivery.leaveSent(asked);
      }
      return asked.answers.reduce((total, { answer }) => total + countOf(answer), 0);
    }
    const asked = await this.bus.request<unknown>(CONTROL_TOPICS.leave, {
      room,
      member: { userId: member.userId },
    });
    // Instances that did not answer get it once they can be reached (ControlRedelivery).
    this.redelivery.leaveSent(asked);
    return asked.answers.reduce((total, { answer }) => total + countOf(answer), here ?? 0);
  }

  /**
   * The owner's part of a join of one connection; undefined when every instance asked answered
   * and none has it. Throws BUS_UNAVAILABLE when no owner answered and some instance could not
   * be asked: 0 would claim the connection does not exist, and the join is not sent again later.
   */
  private async askOwner(room: string, connectionId: unknown): Promise<JoinAnswer | undefined> {
    if (typeof connectionId !== 'string') return undefined;
    const asked = await this.bus.request<unknown>(
      CONTROL_TOPICS.join,
      { room, member: { connectionId } },
      { until: (answer) => joinAnswerOf(answer) !== undefined },
    );
    for (const { answer } of asked.answers) {
      const parsed = joinAnswerOf(answer);
      if (parsed) return parsed;
    }
    if (asked.degraded) {
      throw new RealtimeSendError(
        'BUS_UNAVAILABLE',
        `Connection ${connectionId} is not on this instance and the others cannot be reached now: it did not join room ${room}; retry later`,
      );
    }
    if (asked.unreachable.length > 0) {
      throw new RealtimeSendError(
        'BUS_UNAVAILABLE',
        `No instance that answered has connection ${connectionId}, and ${asked.unreachable.length} did not answer in time: if it is on one of those, it may join room ${room} late or not at all; retry later`,
      );
    }
    return undefined;
  }

  /**
   * This instance's part of a leave, kept from being undone by a pending catch-up; one by user id
   * is kept for the instances that miss it, and against joins made before it.
   */
  private leaveHere(room: string, member: RoomMember): number | null {
    const result = this.local.leave(room, member);
    if ('userId' in member) {
      this.redelivery.left(member, room);
      this.catchUp.userLeft(member.userId, room);
    } else if (result?.connection) this.catchUp.connectionLeft(result.connection, room);
    return result && result.left;
  }
}

/** An answer to a request about one connection from the instance that has it (null elsewhere). */
function isHere(answer: unknown): boolean {
  return answer !== null && answer !== undefined;
}
