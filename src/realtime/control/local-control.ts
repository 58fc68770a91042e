import { CloseCode } from '../../protocol/index.js';
import type { ConnectionCloser } from '../gateway/connection-closer.js';
import { monotonicNow } from '../monotonic-clock.js';
import { type ConnectionRegistry, RoomFullError } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import type { JoinAnswer, RoomMember } from './control-requests.js';

/**
 * What RealtimeService's control methods do to this instance's connections: what they did
 * before there were other instances, for the caller here and for the others' requests alike.
 */
export class LocalControl {
  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly closer: ConnectionCloser,
    private readonly roomLimit: number,
    /** Sends a connection the error that precedes a 4008 close (PROTOCOL.md section 6). */
    private readonly tellEvicted: (connection: RealtimeConnection) => void = () => undefined,
  ) {}

  /** Ends the connection if it is here; false when it is not. */
  disconnectConnection(connectionId: string, code: number, reason: string): boolean {
    const connection = this.registry.get(connectionId);
    if (!connection) return false;
    this.end(connection, code, reason);
    return true;
  }

  /**
   * Ends every connection of the user here, or, with `openForMs`, those open for at least that
   * long; how many.
   */
  disconnectUser(userId: string, code: number, reason: string, openForMs?: number): number {
    let connections = [...this.registry.ofUser(userId)];
    if (openForMs !== undefined) {
      const openedBy = monotonicNow() - openForMs;
      connections = connections.filter(({ connectedAt }) => connectedAt <= openedBy);
    }
    for (const connection of connections) this.end(connection, code, reason);
    return connections.length;
  }

  private end(connection: RealtimeConnection, code: number, reason: string): void {
    if (code === CloseCode.CONNECTION_LIMIT_EXCEEDED && !connection.closing) {
      this.tellEvicted(connection);
    }
    this.closer.close(connection, code, reason);
  }

  /**
   * Adds the user's connections here (all or, past the room's limit, none) and remembers the
   * room for their later ones; or the one connection, null when it is not here.
   */
  join(room: string, member: RoomMember): JoinAnswer | null {
    try {
      if ('userId' in member) {
        return { joined: this.registry.joinUser(member.userId, room, this.roomLimit) };
      }
      const connection = this.registry.get(member.connectionId);
      if (!connection) return null;
      const before = connection.rooms.size;
      this.registry.join(connection, room, this.roomLimit);
      return { joined: connection.rooms.size - before };
    } catch (error) {
      if (error instanceof RoomFullError) return { full: this.roomLimit };
      throw error;
    }
  }

  /**
   * A leave by user id made at `leftAt` (monotonicNow()) that may not have reached this instance
   * then: it undoes the join of the user to the room by user id that it follows here, as
   * {@link leave} would have (the user's connections here leave the room, and later ones do not
   * join it). Nothing when the user was joined to it by user id since (the later decision wins),
   * or is not in it by user id here: then it was applied already (it is sent again at every
   * exchange), and a join by connection id made since stays. How many connections left.
   */
  leaveUserLate(userId: string, room: string, leftAt: number): number {
    const joinedAt = this.registry.userRoomJoins(userId).get(room);
    if (joinedAt === undefined || joinedAt > leftAt) return 0;
    return this.registry.leaveUser(userId, room);
  }

  /**
   * Takes the user's connections here out of the room (and forgets it for their later ones), or
   * the one connection, null when it is not here. `connection`: the one that left, if one did.
   */
  leave(
    room: string,
    member: RoomMember,
  ): { left: number; connection?: RealtimeConnection } | null {
    if ('userId' in member) return { left: this.registry.leaveUser(member.userId, room) };
    const connection = this.registry.get(member.connectionId);
    if (!connection) return null;
    return this.registry.leave(connection, room) ? { left: 1, connection } : { left: 0 };
  }
}
