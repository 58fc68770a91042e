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
   * `{ disconnects }`: the asker's recent disconnects ({@link RecentDisconnect}), sent when it is
   * back from a cut (or to an instance that left one unanswered); each applies them and answers
   * with its own (DisconnectRedelivery).
   */
  disconnects: 'control.recent_disconnects',
  /** `{ room, member }`: a {@link JoinAnswer}, or null for a connection that is not there. */
  join: 'rooms.join',
  /** `{ room, member }`: how many left, or null for a connection that is not there. */
  leave: 'rooms.leave',
  /**
   * `{ userId }`: {@link UserRoomsAnswer}: the rooms the user joined by user id (null without a
   * connection of the user there), whether that instance is still asking for them itself, and
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

/** Most disconnects one instance keeps, and sends, for those that may have missed them. */
export const MAX_RECENT_DISCONNECTS = 1000;

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
  /** Its connections of the user are new and it awaits the others' answers: rooms may lack some. */
  catchingUp: boolean;
  /** Whether that instance knows of a join by user id anywhere in the cluster. */
  inUse: boolean;
}

/** One instance's answer to {@link CONTROL_TOPICS.usersRooms}. */
export interface UsersRoomsAnswer {
  /** The users asked about that have a connection there. */
  users: Array<{ userId: string; rooms: string[] }>;
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
): Map<string, Set<string>> {
  const byUser = new Map<string, Set<string>>();
  for (const answer of answers) {
    if (!isJsonObject(answer) || !Array.isArray(answer.users)) continue;
    for (const entry of answer.users) {
      if (!isJsonObject(entry) || typeof entry.userId !== 'string') continue;
      if (!userIds.has(entry.userId)) continue;
      const rooms = byUser.get(entry.userId) ?? new Set<string>();
      for (const room of roomsOf(entry)) rooms.add(room);
      byUser.set(entry.userId, rooms);
    }
  }
  return byUser;
}

/** The rooms of an answer to {@link CONTROL_TOPICS.userRooms}; valid room names only. */
export function roomsOf(answer: unknown): string[] {
  if (!isJsonObject(answer) || !Array.isArray(answer.rooms)) return [];
  return answer.rooms.filter((room): room is string => nameProblem(ROOM_RULE, room) === undefined);
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

/** The disconnects of a {@link CONTROL_TOPICS.disconnects} request or answer; throws on others. */
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
    if (typeof madeMsAgo !== 'number' || !Number.isFinite(madeMsAgo) || madeMsAgo < 0) {
      throw new Error('invalid madeMsAgo');
    }
    return {
      disconnect:
        typeof disconnect.connectionId === 'string'
          ? connectionCloseOf(disconnect)
          : userCloseOf(disconnect),
      madeMsAgo,
    };
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
