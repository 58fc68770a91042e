import { monotonicNow } from '../monotonic-clock.js';
import { randomId } from '../random-id.js';
import {
  MAX_RECENT_LEAVES,
  RECENT_DECISION_MS,
  type RecentLeave,
  type RoomMember,
} from './control-requests.js';
import { forgetOld } from './forget-old.js';

interface Left {
  readonly member: RoomMember;
  readonly room: string;
  /** On this instance's monotonic clock. */
  readonly leftAt: number;
  /** Of a leave of a connection, what its owner knows it by; empty for one by user id. */
  readonly id: string;
}

/**
 * The leaves this instance made or applied in the last RECENT_DECISION_MS (at most
 * MAX_RECENT_LEAVES, the latest per member and room): by user id, and of single connections whose
 * instance did not answer. What an instance that missed one gets when it is back
 * (ControlRedelivery), and what keeps a join by user id made before one from coming back here
 * with another instance's answer (UserRoomCatchUp).
 */
export class RecentLeaves {
  /** By member and room, in the order recorded: a later leave of the same moves to the end. */
  private readonly recent = new Map<string, Left>();

  /** The member left the room at `leftAt` (monotonicNow()). */
  record(member: RoomMember, room: string, leftAt = monotonicNow()): void {
    const key = keyOf(member, room);
    const known = this.recent.get(key);
    if (known && known.leftAt >= leftAt) return;
    this.recent.delete(key);
    this.recent.set(key, { member, room, leftAt, id: 'userId' in member ? '' : randomId() });
    this.forgetOld();
  }

  /** When the user last left the room by user id, if that is kept here. */
  leftAt(userId: string, room: string): number | undefined {
    return this.recent.get(keyOf({ userId }, room))?.leftAt;
  }

  /** Those kept, with how long ago each was made. */
  entries(): RecentLeave[] {
    this.forgetOld();
    const now = monotonicNow();
    const leaves: RecentLeave[] = [];
    for (const { member, room, leftAt, id } of this.recent.values()) {
      // One recorded late, from another instance, may be older than those recorded before it.
      if (now - leftAt >= RECENT_DECISION_MS) continue;
      const leftMsAgo = now - leftAt;
      leaves.push(
        'userId' in member ? { ...member, room, leftMsAgo } : { ...member, id, room, leftMsAgo },
      );
    }
    return leaves;
  }

  get size(): number {
    return this.recent.size;
  }

  private forgetOld(): void {
    forgetOld(this.recent, ({ leftAt }) => leftAt, MAX_RECENT_LEAVES);
  }
}

/** Unambiguous whatever the names hold. */
function keyOf(member: RoomMember, room: string): string {
  return 'userId' in member
    ? JSON.stringify(['user', member.userId, room])
    : JSON.stringify(['connection', member.connectionId, room]);
}
