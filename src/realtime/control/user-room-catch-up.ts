import type { Subscription } from 'rxjs';
import { busConnected } from '../bus/bus-connected.js';
import { InProcessBus } from '../bus/in-process.bus.js';
import {
  answersIncomplete,
  type ClusterAnswers,
  NO_ANSWERS,
  type RealtimeBus,
} from '../bus/realtime-bus.js';
import { monotonicNow } from '../monotonic-clock.js';
import type { ConnectionOpenedEvent, RealtimeEvents } from '../realtime-events.js';
import type { ConnectionRegistry } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { RetryBackoff } from '../retry-backoff.js';
import { SerialRuns } from '../serial-runs.js';
import {
  CONTROL_TOPICS,
  inUseOf,
  knowsUserRooms,
  MAX_USERS_PER_ROOMS_REQUEST,
  type RoomJoin,
  roomsByUserOf,
  roomsOf,
  type UserRoomsAnswer,
  userRequestOf,
  type UsersRoomsAnswer,
  usersRequestOf,
} from './control-requests.js';
import type { RecentLeaves } from './recent-leaves.js';

/**
 * A user whose rooms here may lack some joined by user id elsewhere, and what they left here
 * meanwhile (a later answer must not put them back).
 */
interface Pending {
  /** Rooms the user left by user id. */
  rooms: Set<string>;
  /** Rooms single connections of the user left. */
  connections: Map<RealtimeConnection, Set<string>>;
  /** A request for them is out; false: none could go out, or it came back incomplete. */
  asking: boolean;
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
 * A question that could not go out (this instance cut off from Redis, even while "unused" below
 * is known) or that some instance left unanswered leaves the user waiting, what they leave here
 * meanwhile still noted, and this instance's answers about them say it is still asking. Waiting
 * users are asked about again, a bounded batch per request, one request at a time: when this
 * instance reconnects or its subscription alone comes back (or, for users it could not ask at
 * all, at the next connect once the bus is up), when an instance back from a cut that knows of a
 * join by user id says so (it does, even with nobody to ask about), and, after answers that an
 * instance left out while the bus was up, a few times with growing delays. The user's last
 * connection here closing ends the wait. On those first two occasions (this instance, or another,
 * back from a cut) every user with a connection here waits too: a join by user id made on one side
 * of the cut did not reach the user's connections on the other. Answers say how long ago each room
 * was joined, and a room the user left by user id after that join (RecentLeaves: here, or as
 * another instance said) is not taken on: the later decision wins. A leave made on the other side
 * of a cut reaches the user's connections here by ControlRedelivery.
 *
 * Most applications never join a room by user id. So that their connects ask nobody, the
 * question stops once every other instance answered that it knows of no such join; any join by
 * user id, here, broadcast from elsewhere, or announced by an instance back from a cut that made
 * one meanwhile, turns it on again for good. After this instance reconnects to the others it asks
 * again, as it may have missed such a join meanwhile; its waiting users are then asked about
 * only until the others say they know of none.
 */
export class UserRoomCatchUp {
  /** Users whose rooms here may be incomplete: being asked for, or waiting to be. */
  private readonly pending = new Map<string, Pending>();
  private subscription: Subscription | undefined;
  /** A room was joined by user id somewhere in the cluster (here, or as another said). */
  private inUse = false;
  /** Every other instance said it knows of no join by user id: connects need not ask. */
  private knownUnused = false;
  /** Occasions to ask waiting users again so far: a question out during one asks again. */
  private occasions = 0;
  /** Users wait that could not be asked at all: the next connect with the bus up asks again. */
  private waitingForBus = false;
  /** Rounds of asking again, one at a time; an occasion during one runs one more after it. */
  private readonly rounds = new SerialRuns(() => this.askAgainRound());
  /** The next round tells the others this instance is back from a cut. */
  private announceNext = false;
  /** The next round asks about every user with a connection here, not only the waiting ones. */
  private askAll = false;
  /**
   * An instance that did not answer in time while the bus was up gives no other occasion: waiting
   * users are asked about again with growing delays, a bounded number of times in a row without a
   * complete answer (RetryBackoff); past that, at the next occasion.
   */
  private readonly retries = new RetryBackoff(() => {
    if (!this.subscription?.closed) this.askAgain(false, true);
  });

  constructor(
    private readonly bus: RealtimeBus,
    private readonly registry: ConnectionRegistry,
    private readonly events: RealtimeEvents,
    private readonly roomLimit: number,
    private readonly leaves: RecentLeaves,
  ) {}

  /** Answers the others' questions and, unless alone by construction, follows connects here. */
  start(): void {
    this.bus.handle(CONTROL_TOPICS.userRooms, (payload): UserRoomsAnswer => {
      const { userId } = userRequestOf(payload);
      const here = this.roomsHere(userId);
      return {
        rooms: here?.rooms ?? null,
        joinedMsAgo: here?.joinedMsAgo ?? null,
        catchingUp: here !== null && this.pending.has(userId),
        inUse: this.inUse,
      };
    });
    this.bus.handle(CONTROL_TOPICS.usersRooms, (payload): UsersRoomsAnswer => {
      const { userIds, inUse, back } = usersRequestOf(payload);
      if (inUse) this.inUse = true;
      // The asker could not answer while it was cut off, nor reach this instance: what waits for
      // it here is asked now, and so is every user here (it may have joined them meanwhile).
      if (back) {
        this.askAll = true;
        this.askAgain(false);
      }
      const users: UsersRoomsAnswer['users'] = [];
      for (const userId of userIds) {
        const here = this.roomsHere(userId);
        if (here) users.push({ userId, ...here });
      }
      return { users, inUse: this.inUse };
    });
    // Alone, there is nobody to ask: connects are not followed (nor their events built for this).
    if (this.bus instanceof InProcessBus || this.subscription) return;
    this.subscription = this.events.opened.subscribe((event) => this.opened(event));
    // An answer still to come for connections that all closed may be stale (the user's rooms
    // changed meanwhile, or they went offline everywhere): their next first connection asks again.
    this.subscription.add(
      this.events.closed.subscribe(({ userId }) => {
        if (this.registry.ofUser(userId).size === 0) this.pending.delete(userId);
      }),
    );
    this.bus.onClusterChange((change) => {
      // Either way the others' questions went unanswered here, and their joins unheard.
      if (change.kind === 'instances_gone') return;
      // Cut off, this instance may have missed a join by user id: "unused" is not known any more.
      this.knownUnused = false;
      // Joins by user id made elsewhere meanwhile did not reach the user's connections here.
      this.askAll = true;
      this.askAgain(true);
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

  /**
   * The user's rooms by user id here, and how long ago each was joined; null without a connection
   * of the user here.
   */
  private roomsHere(userId: string): { rooms: string[]; joinedMsAgo: number[] } | null {
    if (this.registry.ofUser(userId).size === 0) return null;
    const now = monotonicNow();
    const rooms: string[] = [];
    const joinedMsAgo: number[] = [];
    for (const [room, joinedAt] of this.registry.userRoomJoins(userId)) {
      rooms.push(room);
      joinedMsAgo.push(now - joinedAt);
    }
    return { rooms, joinedMsAgo };
  }

  private opened({ connectionId, userId }: ConnectionOpenedEvent): void {
    if (this.waitingForBus && this.bus.isConnected()) this.askAgain(false);
    // A user with connections here already has the rooms here: registry.add joined them, or the
    // pending answer will.
    if (!this.registry.get(connectionId) || this.registry.ofUser(userId).size !== 1) return;
    if (!this.bus.isConnected()) {
      // Even while "unused" is known: a join by user id may be made elsewhere meanwhile.
      this.pending.set(userId, { rooms: new Set(), connections: new Map(), asking: false });
      this.waitingForBus = true;
      return;
    }
    if (this.bus.liveInstances().length < 2) return;
    if (this.knownUnused && !this.inUse) return;
    const entry: Pending = { rooms: new Set(), connections: new Map(), asking: true };
    this.pending.set(userId, entry);
    const occasion = this.occasions;
    const askedAt = monotonicNow();
    this.bus
      .request<unknown>(
        CONTROL_TOPICS.userRooms,
        { userId },
        // Each instance with a connection of the user, not asking itself, knows the same rooms.
        { until: knowsUserRooms },
      )
      .catch(() => NO_ANSWERS)
      .then((result) => {
        const answers = result.answers.map(({ answer }) => answer);
        this.learnUse(answers, this.answeredAll(result));
        // Complete without every answer when `until` stopped the wait.
        const complete = !answersIncomplete(result);
        this.settle(
          userId,
          entry,
          answers.flatMap((answer) => roomsOf(answer)),
          complete,
          askedAt,
        );
        // An occasion to ask again came while this was out: it was not asked then.
        // (Not a fresh occasion: that one gave the retries their fresh count.)
        if (!complete && this.occasions !== occasion) this.askAgain(false, true);
        else this.retryAfter(result);
      });
  }

  /**
   * Asks about the waiting users again, in rounds, one at a time: an occasion during one runs
   * another after it. `announce`: this instance is back from a cut.
   */
  private askAgain(announce: boolean, retry = false): void {
    // An occasion other than a retry gives the retries a fresh count.
    if (!retry) this.retries.reset();
    this.occasions++;
    this.announceNext ||= announce;
    this.rounds.request();
  }

  private async askAgainRound(): Promise<void> {
    // Not back after all: the next reconnection (or connect, see opened) tries again.
    if (!(await busConnected(this.bus, () => Boolean(this.subscription?.closed)))) return;
    const announce = this.announceNext;
    this.announceNext = false;
    await this.askRound(announce);
  }

  /** One round: the users waiting now, a bounded batch per request, one request at a time. */
  private async askRound(announce: boolean): Promise<void> {
    this.waitingForBus = false;
    if (this.askAll) {
      this.askAll = false;
      // Waiting as any other: what they leave meanwhile is noted, an incomplete answer retried.
      for (const userId of this.registry.userIds()) {
        if (!this.pending.has(userId)) {
          this.pending.set(userId, { rooms: new Set(), connections: new Map(), asking: false });
        }
      }
    }
    const waiting: string[] = [];
    for (const [userId, entry] of this.pending) if (!entry.asking) waiting.push(userId);
    // Back from a cut, an instance that knows of joins by user id tells the others, who may have
    // stopped asking, or have users waiting for its answer; even with nobody to ask about.
    let back = announce && this.inUse;
    for (let start = 0; start < waiting.length || back; start += MAX_USERS_PER_ROOMS_REQUEST) {
      if (this.knownUnused && !this.inUse) return this.forgetWaiting();
      const batch = new Map<string, Pending>();
      for (const userId of waiting.slice(start, start + MAX_USERS_PER_ROOMS_REQUEST)) {
        // Not those whose connections here all closed (or reopened) since.
        const entry = this.pending.get(userId);
        if (entry && !entry.asking) batch.set(userId, entry);
      }
      if (batch.size === 0 && !back) continue;
      await this.askAbout(batch, back);
      back = false;
    }
  }

  private async askAbout(batch: Map<string, Pending>, back: boolean): Promise<void> {
    for (const entry of batch.values()) entry.asking = true;
    const askedAt = monotonicNow();
    const result = await this.bus
      .request<unknown>(CONTROL_TOPICS.usersRooms, {
        userIds: [...batch.keys()],
        inUse: this.inUse,
        back,
      })
      .catch(() => NO_ANSWERS);
    const answers = result.answers.map(({ answer }) => answer);
    const complete = this.answeredAll(result);
    this.learnUse(answers, complete);
    const rooms = roomsByUserOf(answers, new Set(batch.keys()));
    for (const [userId, entry] of batch) {
      this.settle(userId, entry, rooms.get(userId) ?? [], complete, askedAt);
    }
    this.retryAfter(result);
  }

  /**
   * After answers that some instance left out while the bus was up, asks the waiting users about
   * again later (see retries); a complete set of answers starts the count over. A bus that
   * was down reports its reconnection instead, which asks again.
   */
  private retryAfter(result: ClusterAnswers<unknown>): void {
    if (!answersIncomplete(result)) this.retries.reset();
    else if (!result.degraded) this.retries.schedule();
  }

  /** Every other instance said it knows of no join by user id: nobody waits for anything. */
  private forgetWaiting(): void {
    for (const [userId, entry] of this.pending) if (!entry.asking) this.pending.delete(userId);
  }

  /**
   * The user's connections here join the rooms answered, except those left meanwhile or left by
   * user id after the join answered, unless they all closed (or reopened) since it was asked;
   * incomplete, the user waits to be asked again, what they leave still noted.
   *
   * An answer's ages were read when it was built, at some moment between `askedAt` (when the
   * question went out, monotonicNow()) and now: each join is dated as early as it can have been.
   * Dated from now, an answer that took longer on its way than the time between a join and a later
   * leave here put the room back. A join and a leave that the question's round trip cannot order
   * count as a tie, which the leave wins.
   */
  private settle(
    userId: string,
    entry: Pending,
    answered: Iterable<RoomJoin>,
    complete: boolean,
    askedAt: number,
  ): void {
    if (this.pending.get(userId) !== entry) return;
    if (complete) this.pending.delete(userId);
    else entry.asking = false;
    // Room to when it was joined, the latest of the answers.
    const rooms = new Map<string, number>();
    for (const { room, joinedMsAgo } of answered) {
      if (entry.rooms.has(room)) continue;
      const joinedAt = askedAt - joinedMsAgo;
      const leftAt = this.leaves.leftAt(userId, room);
      if (leftAt !== undefined && leftAt >= joinedAt) continue;
      rooms.set(room, Math.max(joinedAt, rooms.get(room) ?? joinedAt));
    }
    if (rooms.size === 0) return;
    this.registry.adoptUserRooms(userId, rooms, this.roomLimit, (connection, room) =>
      Boolean(entry.connections.get(connection)?.has(room)),
    );
  }

  /** Every other instance answered: none timed out, none was left unasked by `until`. */
  private answeredAll(result: ClusterAnswers<unknown>): boolean {
    return (
      !answersIncomplete(result) && result.answers.length >= this.bus.liveInstances().length - 1
    );
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
