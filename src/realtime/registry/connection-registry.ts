import { Injectable } from '@nestjs/common';
import { monotonicNow } from '../monotonic-clock.js';
import type { RealtimeConnection } from './realtime-connection.js';
import { SetIndex } from './set-index.js';

/**
 * Thrown when a room already holds `maxRoomSize` connections (on the instance that holds the
 * connections to add). `joined`: connections that did join meanwhile on other instances, where
 * the room had space (see RealtimeService.joinRoom).
 */
export class RoomFullError extends Error {
  constructor(
    room: string,
    limit: number,
    readonly joined = 0,
  ) {
    super(`Room "${room}" is full (${limit} connections); raise maxRoomSize or use another room`);
    this.name = 'RoomFullError';
  }
}

const NO_ROOMS: ReadonlyMap<string, number> = new Map();

/**
 * The connections of this instance, indexed by id, user, subscribed event, room and remote
 * address, so that every lookup costs what its result costs, never a scan of all connections.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly byId = new Map<string, RealtimeConnection>();
  private readonly byUser = new SetIndex<string, RealtimeConnection>();
  private readonly byEvent = new SetIndex<string, RealtimeConnection>();
  private readonly byRoom = new SetIndex<string, RealtimeConnection>();
  /**
   * Connections per remote address (a count: a Set would hold every connection behind a proxy).
   * Made by the first {@link countOfAddress}: reading a connection's address is a syscall
   * (getpeername) that nothing else needs on connect.
   */
  private perAddress: Map<string, number> | undefined;
  /**
   * Rooms joined by user id, each with when it was joined (monotonicNow): the user's later
   * connections join them too, and a leave made elsewhere before that join does not undo it.
   */
  private readonly userRooms = new Map<string, Map<string, number>>();
  /** Events asked about with {@link watchFirstSubscriber}: whether one has had a subscriber. */
  private readonly watchedEvents = new Map<string, boolean>();
  /** What to call when a watched event that never had a subscriber gets its first one. */
  private readonly firstSubscriberCallbacks = new Map<string, (() => void)[]>();

  /** Registers a connection; it joins its user's rooms, except those already at `roomLimit`. */
  add(connection: RealtimeConnection, roomLimit = Number.POSITIVE_INFINITY): void {
    this.byId.set(connection.id, connection);
    this.byUser.add(connection.userId, connection);
    if (this.perAddress) this.countAddress(this.perAddress, connection, 1);
    const rooms = this.userRooms.get(connection.userId);
    if (rooms) {
      for (const room of rooms.keys()) {
        if (this.byRoom.sizeOf(room) < roomLimit) this.addToRoom(connection, room);
      }
    }
  }

  /** Removes a connection from every index; false when it was not registered. */
  remove(connection: RealtimeConnection): boolean {
    if (this.byId.get(connection.id) !== connection) return false;
    this.byId.delete(connection.id);
    this.byUser.delete(connection.userId, connection);
    if (this.perAddress) this.countAddress(this.perAddress, connection, -1);
    for (const event of connection.subscriptions) this.byEvent.delete(event, connection);
    for (const room of connection.rooms) this.byRoom.delete(room, connection);
    if (this.byUser.sizeOf(connection.userId) === 0) this.userRooms.delete(connection.userId);
    return true;
  }

  get(id: string): RealtimeConnection | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<RealtimeConnection> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }

  get userCount(): number {
    return this.byUser.keyCount;
  }

  userIds(): string[] {
    return [...this.byUser.keys()];
  }

  ofUser(userId: string): ReadonlySet<RealtimeConnection> {
    return this.byUser.get(userId);
  }

  countOfAddress(address: string): number {
    let counts = this.perAddress;
    if (!counts) {
      counts = this.perAddress = new Map();
      for (const connection of this.byId.values()) this.countAddress(counts, connection, 1);
    }
    return counts.get(address) ?? 0;
  }

  /**
   * Node keeps a socket's address once read, so a connection counted here is uncounted under
   * the same address when it is removed, even after its socket closed.
   */
  private countAddress(
    counts: Map<string, number>,
    connection: RealtimeConnection,
    change: 1 | -1,
  ): void {
    const address = connection.remoteAddress;
    const count = (counts.get(address) ?? 0) + change;
    if (count > 0) counts.set(address, count);
    else counts.delete(address);
  }

  /**
   * The user's longest-standing connection (ties broken by id), the one the per-user limit
   * evicts; never `except` (the connection being admitted).
   */
  oldestOf(userId: string, except?: RealtimeConnection): RealtimeConnection | undefined {
    let oldest: RealtimeConnection | undefined;
    for (const connection of this.byUser.get(userId)) {
      if (connection === except) continue;
      if (
        !oldest ||
        connection.connectedAt < oldest.connectedAt ||
        (connection.connectedAt === oldest.connectedAt && connection.id < oldest.id)
      ) {
        oldest = connection;
      }
    }
    return oldest;
  }

  subscribe(connection: RealtimeConnection, event: string): void {
    connection.addSubscription(event);
    this.byEvent.add(event, connection);
    if (this.watchedEvents.get(event) === false) this.firstSubscribed(event);
  }

  /**
   * From now on, remembers whether `event` ever has a subscriber (see {@link hadSubscriber}), and
   * calls `onFirst` once when it has had one: at once if so already, otherwise synchronously
   * inside the first {@link subscribe} to it, before that subscription is acknowledged.
   */
  watchFirstSubscriber(event: string, onFirst?: () => void): void {
    if (!this.watchedEvents.has(event))
      this.watchedEvents.set(event, this.byEvent.sizeOf(event) > 0);
    if (!onFirst) return;
    if (this.watchedEvents.get(event) === true) return onFirst();
    const callbacks = this.firstSubscriberCallbacks.get(event);
    if (callbacks) callbacks.push(onFirst);
    else this.firstSubscriberCallbacks.set(event, [onFirst]);
  }

  /** True once a connection subscribed to a watched `event`, even if none is subscribed now. */
  hadSubscriber(event: string): boolean {
    return this.watchedEvents.get(event) === true;
  }

  unsubscribe(connection: RealtimeConnection, event: string): boolean {
    if (!connection.deleteSubscription(event)) return false;
    this.byEvent.delete(event, connection);
    return true;
  }

  subscribersOf(event: string): ReadonlySet<RealtimeConnection> {
    return this.byEvent.get(event);
  }

  /** Adds one connection to a room; throws {@link RoomFullError} past `limit`. */
  join(connection: RealtimeConnection, room: string, limit: number): void {
    if (connection.rooms.has(room)) return;
    if (this.byRoom.sizeOf(room) >= limit) throw new RoomFullError(room, limit);
    this.addToRoom(connection, room);
  }

  leave(connection: RealtimeConnection, room: string): boolean {
    if (!connection.deleteRoom(room)) return false;
    this.byRoom.delete(room, connection);
    return true;
  }

  /** Adds every connection of a user, now and later while the user stays connected. */
  joinUser(userId: string, room: string, limit: number): number {
    const connections = [...this.byUser.get(userId)].filter((c) => !c.rooms.has(room));
    if (this.byRoom.sizeOf(room) + connections.length > limit) throw new RoomFullError(room, limit);
    for (const connection of connections) this.addToRoom(connection, room);
    if (this.byUser.sizeOf(userId) > 0) this.rememberUserRoom(userId, room, monotonicNow());
    return connections.length;
  }

  /** The rooms the user joined by user id, remembered while the user has a connection here. */
  userRoomsOf(userId: string): ReadonlySet<string> {
    return new Set(this.userRoomJoins(userId).keys());
  }

  /**
   * {@link userRoomsOf} with when each was joined (monotonicNow; for a room taken on from
   * elsewhere, when it was joined there).
   */
  userRoomJoins(userId: string): ReadonlyMap<string, number> {
    return this.userRooms.get(userId) ?? NO_ROOMS;
  }

  /**
   * Takes on rooms the user joined by user id elsewhere, room to when it was joined there: the
   * user's connections here join each (except where it is already at `roomLimit`, as in
   * {@link add}), and so will their later ones. Nothing is remembered for a user without a
   * connection here; `skip` keeps a connection out of a room (one that left it meanwhile).
   * Returns the connections added.
   */
  adoptUserRooms(
    userId: string,
    rooms: ReadonlyMap<string, number>,
    roomLimit: number,
    skip: (connection: RealtimeConnection, room: string) => boolean = () => false,
  ): number {
    const connections = this.byUser.get(userId);
    if (connections.size === 0) return 0;
    let added = 0;
    for (const [room, joinedAt] of rooms) {
      this.rememberUserRoom(userId, room, joinedAt);
      for (const connection of connections) {
        if (connection.rooms.has(room) || this.byRoom.sizeOf(room) >= roomLimit) continue;
        if (skip(connection, room)) continue;
        this.addToRoom(connection, room);
        added++;
      }
    }
    return added;
  }

  leaveUser(userId: string, room: string): number {
    const rooms = this.userRooms.get(userId);
    if (rooms?.delete(room) && rooms.size === 0) this.userRooms.delete(userId);
    let left = 0;
    for (const connection of this.byUser.get(userId)) if (this.leave(connection, room)) left++;
    return left;
  }

  membersOf(room: string): ReadonlySet<RealtimeConnection> {
    return this.byRoom.get(room);
  }

  subscriptionCounts(): Record<string, number> {
    return this.byEvent.counts();
  }

  roomCounts(): Record<string, number> {
    return this.byRoom.counts();
  }

  connectionsPerUser(): Record<string, number> {
    return this.byUser.counts();
  }

  /** Keeps the latest join of the user to the room. */
  private rememberUserRoom(userId: string, room: string, joinedAt: number): void {
    let rooms = this.userRooms.get(userId);
    if (!rooms) this.userRooms.set(userId, (rooms = new Map()));
    const known = rooms.get(room);
    if (known === undefined || known < joinedAt) rooms.set(room, joinedAt);
  }

  private firstSubscribed(event: string): void {
    this.watchedEvents.set(event, true);
    const callbacks = this.firstSubscriberCallbacks.get(event);
    this.firstSubscriberCallbacks.delete(event);
    for (const callback of callbacks ?? []) callback();
  }

  private addToRoom(connection: RealtimeConnection, room: string): void {
    connection.addRoom(room);
    this.byRoom.add(room, connection);
  }
}
