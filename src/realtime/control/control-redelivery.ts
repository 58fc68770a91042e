import { Logger } from '@nestjs/common';
import { busConnected } from '../bus/bus-connected.js';
import { InProcessBus } from '../bus/in-process.bus.js';
import { type ClusterAnswers, NO_ANSWERS, type RealtimeBus } from '../bus/realtime-bus.js';
import { monotonicNow } from '../monotonic-clock.js';
import { RetryBackoff } from '../retry-backoff.js';
import { SerialRuns } from '../serial-runs.js';
import {
  CONTROL_TOPICS,
  type Disconnect,
  disconnectsOf,
  MAX_RECENT_DISCONNECTS,
  MAX_RECENT_LEAVES,
  type RecentDisconnect,
  type RecentLeave,
  recentLeavesOf,
  type RoomMember,
} from './control-requests.js';
import { forgetOld } from './forget-old.js';
import type { LocalControl } from './local-control.js';
import type { RecentLeaves } from './recent-leaves.js';

interface Made {
  readonly disconnect: Disconnect;
  /** When it was made, on this instance's monotonic clock. */
  readonly madeAt: number;
}

/**
 * Disconnects and room leaves that an instance missed (cut off from Redis, or silent past the
 * request timeout) reach it once it can be reached again: a user banned, or a connection kicked,
 * while their instance was cut off is still disconnected when it is back, not left open until it
 * closes on its own; a user or connection taken out of a room is out of it there too, and the
 * room's catch-up does not bring the user back.
 *
 * Each instance keeps the disconnects it made in the last RECENT_DECISION_MS (at most
 * MAX_RECENT_DISCONNECTS), the leaves by user id it made or applied, and the leaves of a
 * connection that no instance answered for (RecentLeaves). One back
 * from a cut (its reconnection, or its subscription's) sends its recent ones to every other
 * instance, and each answers with its own: whichever side of the cut made one, the other side
 * gets it, even an instance whose lease lapsed meanwhile (no request would have been addressed to
 * it). One that stayed connected but left one unanswered is sent them again, a few times with
 * growing delays.
 *
 * Applying one again is harmless, hence no record of who has which: a late disconnect of a user
 * ends only the connections open for at least as long ago as it was made (and those opened while
 * it was in transit), all of which its first delivery would have ended; a connection the user
 * opened since is theirs, made after the decision. A late leave by user id takes the user out of
 * the room unless the user was joined to it by user id since (the later decision wins); one of a
 * connection, its owner applies as it comes. How long ago, not when: the instances' clocks need
 * not agree.
 */
export class ControlRedelivery {
  private readonly logger = new Logger('RealtimeCluster');
  /** By user or connection, oldest first: a later disconnect of the same moves to the end. */
  private readonly recent = new Map<string, Made>();
  /** Ids of leaves of connections here that were applied, to when: each is applied once. */
  private readonly appliedLeaves = new Map<string, number>();
  /** Instances that left a disconnect or a leave unanswered while the bus was up. */
  private readonly stalled = new Set<string>();
  private readonly rounds = new SerialRuns(() => this.round());
  /** The next round tells every other instance this one is back, with its recent decisions. */
  private backNext = false;
  /**
   * An instance that stays connected but leaves a decision unanswered gives no other occasion:
   * it is sent the recent ones again with growing delays, a bounded number of times in a row
   * (RetryBackoff); past that, at the next occasion.
   */
  private readonly retries = new RetryBackoff(() => this.rounds.request());
  private stopped = false;

  constructor(
    private readonly bus: RealtimeBus,
    private readonly local: LocalControl,
    private readonly leaves: RecentLeaves,
  ) {}

  /** Follows the bus's reconnections and answers the others'; alone, nobody can miss one. */
  start(): void {
    if (this.bus instanceof InProcessBus) return;
    this.bus.handle(CONTROL_TOPICS.recent, (payload) => {
      this.apply(disconnectsOf(payload), recentLeavesOf(payload));
      return this.recentPayload();
    });
    this.bus.onClusterChange((change) => {
      // A gone instance that comes back (a lease lapsed during a cut) says so itself.
      if (change.kind === 'instances_gone') return;
      this.backNext = true;
      this.retries.reset();
      this.rounds.request();
    });
  }

  stop(): void {
    this.stopped = true;
    this.retries.stop();
  }

  /** Disconnects kept (for tests). */
  get size(): number {
    return this.recent.size;
  }

  /**
   * A disconnect made at `madeAt` (monotonicNow()) went out: kept, and sent again to instances
   * that did not answer.
   */
  disconnectSent(
    disconnect: Disconnect,
    result: ClusterAnswers<unknown>,
    madeAt = monotonicNow(),
  ): void {
    if (this.bus instanceof InProcessBus) return;
    const key = keyOf(disconnect);
    this.recent.delete(key);
    this.recent.set(key, { disconnect, madeAt });
    this.forgetOld();
    this.retryUnanswered(result);
  }

  /**
   * A leave to keep for instances that missed it, made at `leftAt`: by user id, here (by this
   * instance's call, or another's request); or of one connection that no instance answered for.
   */
  left(member: RoomMember, room: string, leftAt = monotonicNow()): void {
    if (this.bus instanceof InProcessBus) return;
    this.leaves.record(member, room, leftAt);
  }

  /** A leave made here went out: sent again to instances that did not answer. */
  leaveSent(result: ClusterAnswers<unknown>): void {
    if (this.bus instanceof InProcessBus) return;
    this.retryUnanswered(result);
  }

  /** Cut off, its reconnection is the occasion; connected, some instance did not answer. */
  private retryUnanswered(result: ClusterAnswers<unknown>): void {
    if (result.degraded || result.unreachable.length === 0) return;
    for (const id of result.unreachable) this.stalled.add(id);
    this.retries.schedule();
  }

  private async round(): Promise<void> {
    if (!(await busConnected(this.bus, () => this.stopped))) return;
    this.forgetOld();
    if (this.backNext) {
      this.backNext = false;
      // Everyone is sent them now, the stalled ones included.
      this.stalled.clear();
      this.exchanged(await this.exchange());
    } else {
      for (const instance of [...this.stalled]) {
        if (this.stopped) return;
        this.exchanged(await this.exchange(instance));
      }
    }
    if (this.stalled.size > 0) this.retries.schedule();
    else this.retries.reset();
  }

  /** Sends this instance's recent decisions (to `to`, or everyone); answered with theirs. */
  private exchange(to?: string): Promise<ClusterAnswers<unknown>> {
    return this.bus
      .request<unknown>(CONTROL_TOPICS.recent, this.recentPayload(), to ? { to } : {})
      .catch(() => NO_ANSWERS);
  }

  private exchanged(result: ClusterAnswers<unknown>): void {
    for (const { instanceId, answer } of result.answers) {
      this.stalled.delete(instanceId);
      try {
        this.apply(disconnectsOf(answer), recentLeavesOf(answer));
      } catch (error) {
        // Not one of ours (Redis may be shared): nothing of it is applied.
        this.logger.warn({
          event: 'control.recent_invalid',
          instance_id: instanceId,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
    if (!result.degraded) for (const id of result.unreachable) this.stalled.add(id);
  }

  /** Both parsed first: a payload that is not one of ours is applied not at all. */
  private apply(disconnects: RecentDisconnect[], leaves: RecentLeave[]): void {
    for (const { disconnect, madeMsAgo } of disconnects) {
      const { code, reason } = disconnect;
      if ('userId' in disconnect)
        this.local.disconnectUser(disconnect.userId, code, reason, madeMsAgo);
      else this.local.disconnectConnection(disconnect.connectionId, code, reason);
    }
    const now = monotonicNow();
    for (const leave of leaves) {
      const { room, leftMsAgo } = leave;
      if ('connectionId' in leave) {
        this.applyConnectionLeave(leave.connectionId, room, leave.id);
        continue;
      }
      const leftAt = now - leftMsAgo;
      this.leaves.record({ userId: leave.userId }, room, leftAt);
      this.local.leaveUserLate(leave.userId, room, leftAt);
    }
  }

  /**
   * Its owner takes the connection out of the room, once: the instance that made it sends it
   * again at every exchange for an hour, and a join of the connection to the room since stays.
   * The others do not have the connection.
   */
  private applyConnectionLeave(connectionId: string, room: string, id: string): void {
    if (this.appliedLeaves.has(id)) return;
    if (this.local.leave(room, { connectionId }) === null) return;
    this.appliedLeaves.set(id, monotonicNow());
    forgetOld(this.appliedLeaves, (appliedAt) => appliedAt, MAX_RECENT_LEAVES);
  }

  private recentPayload(): { disconnects: RecentDisconnect[]; leaves: RecentLeave[] } {
    const now = monotonicNow();
    const disconnects: RecentDisconnect[] = [];
    for (const { disconnect, madeAt } of this.recent.values()) {
      disconnects.push({ disconnect, madeMsAgo: now - madeAt });
    }
    return { disconnects, leaves: this.leaves.entries() };
  }

  private forgetOld(): void {
    forgetOld(this.recent, ({ madeAt }) => madeAt, MAX_RECENT_DISCONNECTS);
  }
}

function keyOf(disconnect: Disconnect): string {
  return 'userId' in disconnect
    ? `user:${disconnect.userId}`
    : `connection:${disconnect.connectionId}`;
}
