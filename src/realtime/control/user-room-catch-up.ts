import type { Subscription } from 'rxjs';
import { InProcessBus } from '../bus/in-process.bus.js';
import type { RealtimeBus } from '../bus/realtime-bus.js';
import type { ConnectionOpenedEvent, RealtimeEvents } from '../realtime-events.js';
import type { ConnectionRegistry } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import {
  CONTROL_TOPICS,
  inUseOf,
  knowsUserRooms,
  roomsOf,
  type UserRoomsAnswer,
  userRequestOf,
} from './control-requests.js';

/** What left a room here while the user's rooms were being asked for. */
interface LeftMeanwhile {
  /** Rooms the user left by user id. */
  rooms: Set<string>;
  /** Rooms single connections of the user left. */
  connections: Map<RealtimeConnection, Set<string>>;
}

/**
 * Rooms joined by user id, across instances. Each instance remembers them while the user has a
 * connection there (ConnectionRegistry), so that the user's later connections there join them.
 * When a user's first connection here opens while other instances exist, they are asked for the
 * rooms of the user (until one that has a connection of the user, not itself still asking,
 * answers; the rooms of every answer count), and the user's connections here join them: a user
 * who stays connected somewhere keeps their rooms on every instance, and nothing is remembered
 * anywhere once their last connection closed.
 *
 * Most applications never join a room by user id. So that their connects ask nobody, the
 * question stops once every other instance answered that it knows of no such join; any join by
 * user id, here or broadcast from elsewhere, turns it on again for good. After this instance
 * reconnects to the others it asks again, as it may have missed such a join meanwhile.
 */
export class UserRoomCatchUp {
  /** Users whose rooms are being asked for, and what they left meanwhile. */
  private readonly pending = new Map<string, LeftMeanwhile>();
  private subscription: Subscription | undefined;
  /** A room was joined by user id somewhere in the cluster (here, or as another said). */
  private inUse = false;
  /** Every other instance said it knows of no join by user id: connects need not ask. */
  private knownUnused = false;

  constructor(
    private readonly bus: RealtimeBus,
    private readonly registry: ConnectionRegistry,
    private readonly events: RealtimeEvents,
    private readonly roomLimit: number,
  ) {}

  /** Answers the others' questions and, unless alone by construction, follows connects here. */
  start(): void {
    this.bus.handle(CONTROL_TOPICS.userRooms, (payload): UserRoomsAnswer => {
      const { userId } = userRequestOf(payload);
      const here = this.registry.ofUser(userId).size > 0;
      return {
        rooms: here ? [...this.registry.userRoomsOf(userId)] : null,
        catchingUp: here && this.pending.has(userId),
        inUse: this.inUse,
      };
    });
    // Alone, there is nobody to ask: connects are not followed (nor their events built for this).
    if (this.bus instanceof InProcessBus || this.subscription) return;
    this.subscription = this.events.opened.subscribe((event) => this.opened(event));
    // Cut off, this instance may have missed a join by user id: "unused" is not known any more.
    this.bus.onClusterChange((change) => {
      if (change.kind === 'reconnected') this.knownUnused = false;
    });
  }

  /** A room was joined by user id, here or on another instance. */
  markInUse(): void {
    this.inUse = true;
  }

  /** The user left `room` by user id here: a pending answer must not put them back in it. */
  userLeft(userId: string, room: string): void {
    this.pending.get(userId)?.rooms.add(room);
  }

  /** `connection` left `room` here: a pending answer must not put it back in. */
  connectionLeft(connection: RealtimeConnection, room: string): void {
    const left = this.pending.get(connection.userId)?.connections;
    if (!left) return;
    const rooms = left.get(connection);
    if (rooms) rooms.add(room);
    else left.set(connection, new Set([room]));
  }

  private opened({ connectionId, userId }: ConnectionOpenedEvent): void {
    // A user with connections here already has the rooms here: registry.add joined them, or the
    // pending answer will.
    if (!this.registry.get(connectionId) || this.registry.ofUser(userId).size !== 1) return;
    // Still pending, it was asked for connections that all closed since: its answer may be stale
    // (the user's rooms changed meanwhile, or they went offline everywhere). Asked again.
    this.pending.delete(userId);
    if (this.bus.liveInstances().length < 2) return;
    if (this.knownUnused && !this.inUse) return;
    const left: LeftMeanwhile = { rooms: new Set(), connections: new Map() };
    this.pending.set(userId, left);
    const current = () => this.pending.get(userId) === left;
    const done = () => {
      if (current()) this.pending.delete(userId);
    };
    this.bus
      .request<unknown>(
        CONTROL_TOPICS.userRooms,
        { userId },
        // Each instance with a connection of the user, not asking itself, knows the same rooms.
        { until: knowsUserRooms },
      )
      .then(({ answers, unreachable, degraded }) => {
        const stale = !current();
        done();
        // Complete: every other instance answered (none timed out, none left unasked by `until`).
        const complete =
          !degraded &&
          unreachable.length === 0 &&
          answers.length >= this.bus.liveInstances().length - 1;
        this.learnUse(
          answers.map(({ answer }) => answer),
          complete,
        );
        if (stale) return;
        const rooms = new Set<string>();
        for (const { answer } of answers) {
          for (const room of roomsOf(answer)) if (!left.rooms.has(room)) rooms.add(room);
        }
        if (rooms.size === 0) return;
        this.registry.adoptUserRooms(userId, rooms, this.roomLimit, (connection, room) =>
          Boolean(left.connections.get(connection)?.has(room)),
        );
      }, done);
  }

  /**
   * What the answers say of joins by user id; only from a complete set can "nobody knows of
   * one" be concluded.
   */
  private learnUse(answers: unknown[], complete: boolean): void {
    const said = answers.map(inUseOf);
    if (said.includes(true)) this.inUse = true;
    else if (complete && answers.length > 0 && said.every((inUse) => inUse === false)) {
      this.knownUnused = true;
    }
  }
}
