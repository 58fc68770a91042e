import { monotonicNow } from '../monotonic-clock.js';
import { MAX_RECENT_LEAVES, RECENT_DECISION_MS, type RecentLeave } from './control-requests.js';

interface Left {
  readonly userId: string;
  readonly room: string;
  /** On this instance's monotonic clock. */
  readonly leftAt: number;
}

/**
 * The leaves by user id this instance made or applied in the last RECENT_DECISION_MS (at most
 * MAX_RECENT_LEAVES, the latest per user and room): what an instance that missed one gets when it
 * is back (ControlRedelivery), and what keeps a join made before one from coming back here with
 * another instance's answer (UserRoomCatchUp).
 */
export class RecentLeaves {
  /** By user and room, in the order recorded: a later leave of the same moves to the end. */
  private readonly recent = new Map<string, Left>();

  /** The user left the room by user id at `leftAt` (monotonicNow()). */
  record(userId: string, room: string, leftAt = monotonicNow()): void {
    const key = keyOf(userId, room);
    const known = this.recent.get(key);
    if (known && known.leftAt >= leftAt) return;
    this.recent.delete(key);
    this.recent.set(key, { userId, room, leftAt });
    this.forgetOld();
  }

  /** When the user last left the room by user id, if that is kept here. */
  leftAt(userId: string, room: string): number | undefined {
    return this.recent.get(keyOf(userId, room))?.leftAt;
  }

  /** Those kept, with how long ago each was made. */
  entries(): RecentLeave[] {
    this.forgetOld();
    const now = monotonicNow();
    const leaves: RecentLeave[] = [];
    for (const { userId, room, leftAt } of this.recent.values()) {
      // One recorded late, from another instance, may be older than those recorded before it.
      if (now - leftAt < RECENT_DECISION_MS) leaves.push({ userId, room, leftMsAgo: now - leftAt });
    }
    return leaves;
  }

  get size(): number {
    return this.recent.size;
  }

  /** Drops the first recorded while older than RECENT_DECISION_MS, or past the count. */
  private forgetOld(): void {
    const oldest = monotonicNow() - RECENT_DECISION_MS;
    for (const [key, { leftAt }] of this.recent) {
      if (leftAt > oldest && this.recent.size <= MAX_RECENT_LEAVES) return;
      this.recent.delete(key);
    }
  }
}

/** Unambiguous whatever the names hold. */
function keyOf(userId: string, room: string): string {
  return JSON.stringify([userId, room]);
}
