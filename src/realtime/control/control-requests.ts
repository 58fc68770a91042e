import { isJsonObject } from '../../protocol/index.js';
import { nameProblem, ROOM_RULE, USER_ID_RULE } from '../name-limits.js';

/** A room member: every connection of a user, or one connection. */
export type RoomMember = { userId: string } | { connectionId: string };

/**
 * Topics of the requests RealtimeService's control methods (and the admin API's DELETE of a
 * connection) send the other instances over the bus. Each instance answers for its own
 * connections only.
 */
export const CONTROL_TOPICS = {
  /** `{ connectionId, code, reason }`: true from the instance that closed it, false elsewhere. */
  disconnectConnection: 'control.disconnect_connection',
  /** `{ userId, code, reason }`: how many connections of the user that instance closed. */
  disconnectUser: 'control.disconnect_user',
  /**
   * `{ disconnects, leaves }`: the asker's recent disconnects ({@link RecentDisconnect}) and
   * leaves ({@link RecentLeave}: by user id, or of a connection no instance answered for), sent
   * when it is back from a cut (or to an instance that left one unanswered); each applies them
   * and answers with its own (ControlRedelivery).
   */
  recent: 'control.recent_decisions',
  /** `{ room, member }`: a {@link JoinAnswer}, or null for a connection that is not there. */
  join: 'rooms.join',
  /** `{ room, member }`: how many left, or null for a connection that is not there. */
  leave: 'rooms.leave',
  /**
   * `{ userId }`: {@link UserRoomsAnswer}: the rooms the user joined by user id and how long ago
   * (null without a connection of the user there), whether that instance is still asking for them itself, and
   * whether it knows of any join by user id.
   */
  userRooms: 'rooms.of_user',
  /**
   * `{ userIds, inUse, back }`: {@link UsersRoomsAnswer}, the rooms of each of those users with a
   * connection there; asked again for users whose first question went unanswered. `inUse`: the
   * asker knows of a join by user id; `back`: it was cut off from the others until now.
   */
  usersRooms: 'rooms.of_users',
} as const;

/**
 * Most users one {@link CONTROL_TOPICS.usersRooms} request names: a few thousand reconnecting
 * users are asked about in a few dozen requests, each answer far below the bus's envelope bound.
 */
export const MAX_USERS_PER_ROOMS_REQUEST = 100;

/**
 * One instance's part of a join: how many of its connections joined, or, when they did not fit
 * in the room there, that instance's `maxRoomSize` (and none of them joined).
 */
export type JoinAnswer = { joined: number } | { full: number };

/** What an instance was asked to close, and with which close frame. */
export interface CloseRequest {
  code: number;
  reason: string;
}

/** A disconnect of a user's connections, or of one connection, wherever they are. */
export type Disconnect = CloseRequest & ({ userId: string } | { connectionId: string });

/** A disconnect an instance made, and how long before it was sent: applied late, if missed. */
export interface RecentDisconnect {
  disconnect: Disconnect;
  madeMsAgo: number;
}

/**
 * How long a disconnect or a leave is kept for instances that may have missed it: one cut off
 * from Redis for longer misses those made before (its connections' tokens still expire).
 */
export const RECENT_DECISION_MS = 60 * 60_000;

/** Most disconnects one instance keeps, and sends, for those that may have missed them. */
export const MAX_RECENT_DISCONNECTS = 1000;

/**
 * A leave an instance knows of, and how long before it was sent. One of a connection has an `id`
 * of its own: its owner applies it once, however often it is sent.
 */
export type RecentLeave = { room: string; leftMsAgo: number } & (
  { userId: string } | { connectionId: string; id: string }
);

/** Longest id of a leave of a connection (ours are UUIDs: 36 characters). */
const MAX_LEAVE_ID_LENGTH = 64;

/** Most leaves one instance keeps, and sends, for those that may have missed them. */
export const MAX_RECENT_LEAVES = 1000;

/** A room a user joined by user id, and how long before the answer that said so. */
export interface RoomJoin {
  room: string;
  joinedMsAgo: number;
}

/** A count another instance answered; anything else counts as none. */
export function countOf(answer: unknown): number {
  return typeof answer === 'number' && Number.isSafeInteger(answer) && answer >= 0 ? answer : 0;
}

/** A {@link JoinAnswer} of another instance, or undefined for anything else (null included). */
export function joinAnswerOf(answer: unknown): JoinAnswer | undefined {
  if (!isJsonObject(answer)) return undefined;
  if ('full' in answer) {
    const limit = countOf(answer.full);
    return { full: limit };
  }
  return 'joined' in answer ? { joined: countOf(answer.joined) } : undefined;
}

/** One instance's answer to {@link CONTROL_TOPICS.userRooms}. */
export interface UserRoomsAnswer {
  rooms: string[] | null;
  /** How long ago each of `rooms` was joined, in the same order. */
  joinedMsAgo: number[] | null;
  /** Its connections of the user are new and it awaits the others' answers: rooms may lack some. */
  catchingUp: boolean;
  /** Whether that instance knows of a join by user id anywhere in the cluster. */
  inUse: boolean;
}

/** One instance's answer to {@link CONTROL_TOPICS.usersRooms}. */
export interface UsersRoomsAnswer {
  /** The users asked about that have a connection there. */
  users: Array<{ userId: string; rooms: string[]; joinedMsAgo: number[] }>;
  /** Whether that instance knows of a join by user id anywhere in the cluster. */
  inUse: boolean;
}

/**
 * The rooms each of `userIds` is in by user id, after the answers to
 * {@link CONTROL_TOPICS.usersRooms}; valid room names of users asked about only.
 */
export function roomsByUserOf(
  answers: readonly unknown[],
  userIds: ReadonlySet<string>,
): Map<string, RoomJoin[]> {
  const byUser = new Map<string, RoomJoin[]>();
  for (const answer of answers) {
    if (!isJsonObject(answer) || !Array.isArray(answer.users)) continue;
    for (const entry of answer.users) {
      if (!isJsonObject(entry) || typeof entry.userId !== 'string') continue;
      if (!userIds.has(entry.userId)) continue;
      const rooms = byUser.get(entry.userId) ?? [];
      rooms.push(...roomsOf(entry));
      byUser.set(entry.userId, rooms);
    }
  }
  return byUser;
}

/**
 * The rooms of an answer to {@link CONTROL_TOPICS.userRooms} (or of a user in one to
 * {@link CONTROL_TOPICS.usersRooms}); valid room names only. A join without a valid age counts as
 * made just now: a later leave known here cannot undo it.
 */
export function roomsOf(answer: unknown): RoomJoin[] {
  if (!isJsonObject(answer) || !Array.isArray(answer.rooms)) return [];
  const ages = Array.isArray(answer.joinedMsAgo) ? answer.joinedMsAgo : [];
  const joins: RoomJoin[] = [];
  answer.rooms.forEach((room: unknown, index: number) => {
    if (nameProblem(ROOM_RULE, room) !== undefined) return;
    const age: unknown = ages[index];
    joins.push({ room: room as string, joinedMsAgo: isAge(age) ? age : 0 });
  });
  return joins;
}

function isAge(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/**
 * Whether the answering instance knows the user's rooms: it has a connection of the user and is
 * not asking for them itself.
 */
export function knowsUserRooms(answer: unknown): boolean {
  return isJsonObject(answer) && Array.isArray(answer.rooms) && answer.catchingUp !== true;
}

/** True or false as the answer says; undefined when it does not say (not one of ours). */
export function inUseOf(answer: unknown): boolean | undefined {
  return isJsonObject(answer) && typeof answer.inUse === 'boolean' ? answer.inUse : undefined;
}

// What the others ask is checked as the service checks its callers: Redis may be shared, and a
// payload that is not one of ours is answered with an error (which the asker does not count).

export function roomRequestOf(payload: unknown): { room: string; member: RoomMember } {
  if (!isJsonObject(payload)) throw new Error('invalid room request');
  const room = payload.room;
  if (nameProblem(ROOM_RULE, room) !== undefined) throw new Error('invalid room');
  return { room: room as string, member: memberOf(payload.member) };
}

export function userRequestOf(payload: unknown): { userId: string } {
  return { userId: userIdOf(isJsonObject(payload) ? payload.userId : undefined) };
}

export function usersRequestOf(payload: unknown): {
  userIds: string[];
  inUse: boolean;
  back: boolean;
} {
  if (!isJsonObject(payload) || !Array.isArray(payload.userIds)) throw new Error('invalid users');
  if (payload.userIds.length > MAX_USERS_PER_ROOMS_REQUEST) throw new Error('too many users');
  return {
    userIds: payload.userIds.map((userId) => userIdOf(userId)),
    inUse: payload.inUse === true,
    back: payload.back === true,
  };
}

export function connectionCloseOf(payload: unknown): CloseRequest & { connectionId: string } {
  if (!isJsonObject(payload) || typeof payload.connectionId !== 'string') {
    throw new Error('invalid connection id');
  }
  return { connectionId: payload.connectionId, ...closeOf(payload) };
}

export function userCloseOf(payload: unknown): CloseRequest & { userId: string } {
  if (!isJsonObject(payload)) throw new Error('invalid user request');
  return { ...userRequestOf(payload), ...closeOf(payload) };
}

/** The disconnects of a {@link CONTROL_TOPICS.recent} request or answer; throws on others. */
export function disconnectsOf(payload: unknown): RecentDisconnect[] {
  if (!isJsonObject(payload) || !Array.isArray(payload.disconnects)) {
    throw new Error('invalid disconnects');
  }
  if (payload.disconnects.length > MAX_RECENT_DISCONNECTS) throw new Error('too many disconnects');
  return payload.disconnects.map((entry: unknown): RecentDisconnect => {
    if (!isJsonObject(entry) || !isJsonObject(entry.disconnect)) {
      throw new Error('invalid disconnect');
    }
    const { disconnect, madeMsAgo } = entry;
    if (!isAge(madeMsAgo)) throw new Error('invalid madeMsAgo');
    return {
      disconnect:
        typeof disconnect.connectionId === 'string'
          ? connectionCloseOf(disconnect)
          : userCloseOf(disconnect),
      madeMsAgo,
    };
  });
}

/**
 * The leaves of a {@link CONTROL_TOPICS.recent} request or answer (none when it has no `leaves`:
 * an instance of a version before them); throws on anything else.
 */
export function recentLeavesOf(payload: unknown): RecentLeave[] {
  if (!isJsonObject(payload)) throw new Error('invalid leaves');
  if (payload.leaves === undefined) return [];
  if (!Array.isArray(payload.leaves)) throw new Error('invalid leaves');
  if (payload.leaves.length > MAX_RECENT_LEAVES) throw new Error('too many leaves');
  return payload.leaves.map((entry: unknown): RecentLeave => {
    if (!isJsonObject(entry)) throw new Error('invalid leave');
    const { room, leftMsAgo, id } = entry;
    if (nameProblem(ROOM_RULE, room) !== undefined) throw new Error('invalid room');
    if (!isAge(leftMsAgo)) throw new Error('invalid leftMsAgo');
    const member = memberOf(entry);
    if ('userId' in member) return { ...member, room: room as string, leftMsAgo };
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_LEAVE_ID_LENGTH) {
      throw new Error('invalid leave id');
    }
    return { ...member, id, room: room as string, leftMsAgo };
  });
}

function memberOf(value: unknown): RoomMember {
  if (isJsonObject(value)) {
    if (typeof value.connectionId === 'string') return { connectionId: value.connectionId };
    if ('userId' in value) return { userId: userIdOf(value.userId) };
  }
  throw new Error('invalid room member');
}

function userIdOf(value: unknown): string {
  if (nameProblem(USER_ID_RULE, value) !== undefined) throw new Error('invalid user id');
  return value as string;
}

function closeOf(payload: Record<string, unknown>): CloseRequest {
  const { code, reason } = payload;
  if (!Number.isSafeInteger(code) || typeof reason !== 'string') {
    throw new Error('invalid close code or reason');
  }
  return { code: code as number, reason };
}
