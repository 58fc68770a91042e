import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { Observable } from 'rxjs';
import {
  CloseCode,
  CloseReason,
  closeProblem,
  encodeServerMessage,
  jsonObjectProblem,
  MAX_TYPE_LENGTH,
  type NotificationLevel,
  type ServerEnvelope,
  ServerMessageType,
} from '../protocol/index.js';
import type { DeliveryTarget } from './bus/delivery-target.js';
import { RealtimeBus } from './bus/realtime-bus.js';
import { ClusterControl } from './control/cluster-control.js';
import type { RoomMember } from './control/control-requests.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from './realtime-options.js';
import { randomId } from './random-id.js';
import {
  type ConnectionClosedEvent,
  type ConnectionOpenedEvent,
  type InboundMessageEvent,
  RealtimeEvents,
  type UploadCancelRequest,
} from './realtime-events.js';
import { isoNow } from './gateway/iso-clock.js';
import { RealtimeSendError } from './realtime-send.error.js';
import {
  EVENT_RULE,
  type NameRule,
  nameProblem,
  ROOM_RULE,
  TYPE_RULE,
  USER_ID_RULE,
} from './name-limits.js';
import { PresenceStore } from './presence/presence-store.js';
import { MessageHistory } from './recovery/message-history.js';
import { positionOverhead } from './recovery/positioned-frame.js';
import { type StreamTarget, streamTargets } from './recovery/stream-targets.js';
import { ConnectionRegistry } from './registry/connection-registry.js';

/** Data of a message sent through the service: a JSON object. */
export type MessageData = Record<string, unknown>;

export interface BroadcastOptions {
  /** Leave out every connection of this user. */
  exceptUserId?: string;
  /** Marks where the message came from, e.g. `admin_broadcast`. */
  source?: string;
}

interface RoomMembers {
  connectionIds: string[];
  userIds: string[];
}

const ROOM_MEMBERS_TOPIC = 'rooms.members';

export interface PublishResult {
  /** The message id every recipient sees. */
  id: string;
  /** Connections reached. */
  reached: number;
}

export type { RoomMember } from './control/control-requests.js';

/**
 * What the rest of the host application uses: send to a connection, user(s), event subscribers,
 * a room or everyone; manage rooms; ask who is connected; watch what happens.
 * Every send resolves to the number of connections reached.
 */
@Injectable()
export class RealtimeService implements OnModuleInit {
  /** A connection was admitted. */
  readonly connectionOpened$: Observable<ConnectionOpenedEvent>;
  /** A connection ended, with its close code and reason. */
  readonly connectionClosed$: Observable<ConnectionClosedEvent>;
  /** A valid client message reached a handler. */
  readonly messageReceived$: Observable<InboundMessageEvent>;
  /** A client asked to cancel an upload; answer with {@link sendUploadCancelled} once done. */
  readonly uploadCancelRequested$: Observable<UploadCancelRequest>;

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    private readonly bus: RealtimeBus,
    private readonly presence: PresenceStore,
    private readonly registry: ConnectionRegistry,
    /** Disconnects and room membership on every instance. */
    private readonly control: ClusterControl,
    events: RealtimeEvents,
    @Inject(MessageHistory) private readonly history: MessageHistory | null,
  ) {
    this.connectionOpened$ = events.opened.asObservable();
    this.connectionClosed$ = events.closed.asObservable();
    this.messageReceived$ = events.messages.asObservable();
    this.uploadCancelRequested$ = events.uploadCancels.asObservable();
  }

  onModuleInit(): void {
    this.bus.handle(ROOM_MEMBERS_TOPIC, (payload) =>
      this.localRoomMembers(String((payload as { room?: unknown } | undefined)?.room)),
    );
  }

  private localRoomMembers(room: string): RoomMembers {
    const members = [...this.registry.membersOf(room)];
    return {
      connectionIds: members.map((c) => c.id),
      userIds: [...new Set(members.map((c) => c.userId))],
    };
  }

  sendToConnection(connectionId: string, type: string, data: MessageData): Promise<number> {
    return this.publish(type, data, { kind: 'connection', connectionId });
  }

  sendToUser(userId: string, type: string, data: MessageData): Promise<number> {
    return this.publish(type, data, { kind: 'users', userIds: [userId] });
  }

  sendToUsers(userIds: readonly string[], type: string, data: MessageData): Promise<number> {
    return this.publish(type, data, { kind: 'users', userIds: [...userIds] });
  }

  /**
   * Sends to every connection subscribed to `event`; the message type is the event name, so the
   * name must also be a type (at most MAX_TYPE_LENGTH): for a longer one, use {@link publish}.
   */
  sendToEvent(event: string, data: MessageData): Promise<number> {
    // A type is bounded tighter (100) than an event name (200): say that, rather than "type must
    // be..." about a name the caller passed as an event.
    if (
      typeof event === 'string' &&
      event.length > MAX_TYPE_LENGTH &&
      nameProblem(EVENT_RULE, event) === undefined
    ) {
      return Promise.reject(
        new RealtimeSendError(
          'INVALID_MESSAGE_FORMAT',
          `sendToEvent sends the event name as the type: at most ${MAX_TYPE_LENGTH} UTF-16 code units, and this name has ${event.length}; use publish(type, data, { kind: 'event', event }) with a shorter type`,
        ),
      );
    }
    return this.publish(event, data, { kind: 'event', event });
  }

  sendToRoom(room: string, type: string, data: MessageData): Promise<number> {
    return this.publish(type, data, { kind: 'room', room });
  }

  broadcast(type: string, data: MessageData, options: BroadcastOptions = {}): Promise<number> {
    return this.publish(
      type,
      data,
      { kind: 'all', exceptUserId: options.exceptUserId },
      options.source,
    );
  }

  /** Sends a message to explicit targets; resolves to the connections reached. */
  publish(
    type: string,
    data: MessageData,
    target: DeliveryTarget,
    source?: string,
  ): Promise<number> {
    return this.publishMessage(type, data, target, source).then(reachedOf);
  }

  /**
   * Like {@link publish}, and also tells the message id. Throws {@link RealtimeSendError} for a
   * bad type, target (room name, event name, user id) or data, or a message over
   * `maxMessageSize` (which is then not sent).
   */
  publishMessage(
    type: string,
    data: MessageData,
    target: DeliveryTarget,
    source?: string,
  ): Promise<PublishResult> {
    // Not `async`: every connect publishes (user.status_changed), so V8 optimizes this early, and
    // the state machine of an async function made that compile the largest of a connect's.
    try {
      const { id, frame, streams } = this.encodeSend(type, data, target, source);
      const message = { id, type, target, frame };
      const history = this.history;
      // Each stream's copy is written to the history with its position in the frame, so that a
      // client that misses it live can still get it with `resume`.
      const reached =
        !history || streams.length === 0
          ? this.bus.publish(message)
          : this.bus.publishInStreams(message, streams, history);
      // Promise.resolve: a bus written in plain JS may answer a number, which `await` accepted.
      return Promise.resolve(reached).then((count) => ({ id, reached: count }));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The frame of a send and its streams; throws {@link RealtimeSendError} for a bad one. */
  private encodeSend(
    type: string,
    data: MessageData,
    target: DeliveryTarget,
    source: string | undefined,
  ): { id: string; frame: string; streams: StreamTarget[] } {
    // The target first: sendToEvent('') is about its event, though that is its type too.
    const problem = targetProblem(target) ?? nameProblem(TYPE_RULE, type);
    if (problem !== undefined) throw new RealtimeSendError('INVALID_MESSAGE_FORMAT', problem);
    const notAnObject = jsonObjectProblem(data);
    if (notAnObject !== undefined)
      throw new RealtimeSendError('INVALID_MESSAGE_FORMAT', notAnObject);
    const id = randomId();
    // Built field by field: a spread that adds a field costs V8 microseconds per send.
    const envelope: ServerEnvelope<MessageData> = { type, data, timestamp: isoNow(), id };
    if (source !== undefined) envelope.source = source;
    let frame: string;
    try {
      frame = encodeServerMessage(envelope);
    } catch (error) {
      // A BigInt or a cycle: JSON.stringify's TypeError, as the documented error of a bad send.
      const reason = error instanceof Error ? error.message : String(error);
      throw new RealtimeSendError(
        'INVALID_MESSAGE_FORMAT',
        `data cannot be encoded as JSON: ${reason}`,
      );
    }
    const streams = this.history ? streamTargets(target) : [];
    let overhead = 0;
    for (const { stream } of streams) overhead = Math.max(overhead, positionOverhead(stream));
    const size = Buffer.byteLength(frame) + overhead;
    if (size > this.options.maxMessageSize) {
      throw new RealtimeSendError(
        'MESSAGE_TOO_LARGE',
        `Message of ${size} bytes exceeds maxMessageSize (${this.options.maxMessageSize}); it was not sent`,
      );
    }
    return { id, frame, streams };
  }

  // Rooms, across every instance: every method rejects with RealtimeSendError
  // INVALID_MESSAGE_FORMAT for a room name or user id that none can have (ROOM_RULE,
  // USER_ID_RULE), before anything is asked of the bus. Each acts on this instance's connections
  // at once, before it returns, then asks the others (see ClusterControl).

  /**
   * Adds a user (all their connections on every instance, now and while they stay connected
   * anywhere) or one connection (wherever it is); resolves to the connections that joined.
   * Rejects with RoomFullError when the connection, or the user's connections on some instance,
   * do not fit in the room there (`maxRoomSize` per instance): none of those join, the user's
   * connections on the other instances do (the error's `joined`). A connection that is not here,
   * when no instance that answered has it and some could not be asked, rejects with
   * RealtimeSendError BUS_UNAVAILABLE: whether it exists is not known, and the join is not
   * re-sent later (0 means every instance answered and none has it).
   */
  joinRoom(room: string, member: RoomMember): Promise<number> {
    try {
      checkMember(room, member);
      return this.control.join(room, member);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Takes a user (and their later connections) or one connection out of a room, everywhere. */
  leaveRoom(room: string, member: RoomMember): Promise<number> {
    try {
      checkMember(room, member);
      return this.control.leave(room, member);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Members of a room on every instance (instances that do not answer in time are left out). */
  async getRoomMembers(room: string): Promise<{ connectionIds: string[]; userIds: string[] }> {
    // Before the bus: a name no room can have is not asked of every instance.
    checkName(ROOM_RULE, room);
    const local = this.localRoomMembers(room);
    const { answers } = await this.bus.request<RoomMembers>(ROOM_MEMBERS_TOPIC, { room });
    const all = [local, ...answers.map((a) => a.answer)];
    return {
      connectionIds: all.flatMap((members) => members.connectionIds),
      userIds: [...new Set(all.flatMap((members) => members.userIds))],
    };
  }

  async getRoomSize(room: string): Promise<number> {
    return (await this.getRoomMembers(room)).connectionIds.length;
  }

  // Presence, across every instance. Like every method that names a user, these refuse an id no
  // user can have (USER_ID_RULE) with RealtimeSendError INVALID_MESSAGE_FORMAT.

  async isUserConnected(userId: string): Promise<boolean> {
    checkName(USER_ID_RULE, userId);
    return this.registry.ofUser(userId).size > 0 || this.presence.isOnline(userId);
  }

  getConnectedUsers(): Promise<string[]> {
    return this.presence.onlineUsers();
  }

  // Both refuse a close code or reason that no WebSocket close frame can carry (closeProblem)
  // with RealtimeSendError INVALID_MESSAGE_FORMAT, before closing anything anywhere.

  /**
   * Ends one connection (4004 by default), on whichever instance it is; false when no instance
   * that answered has it.
   */
  disconnectConnection(
    connectionId: string,
    code: number = CloseCode.DISCONNECTED_BY_ADMIN,
    reason: string = CloseReason.DISCONNECTED_BY_ADMIN,
  ): Promise<boolean> {
    try {
      checkClose(code, reason);
      return this.control
        .disconnectConnection(connectionId, code, reason)
        .then((result) => result.disconnected);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Ends every connection of a user on every instance; resolves to how many were ended. */
  disconnectUser(
    userId: string,
    code: number = CloseCode.DISCONNECTED_BY_ADMIN,
    reason: string = CloseReason.DISCONNECTED_BY_ADMIN,
  ): Promise<number> {
    try {
      checkName(USER_ID_RULE, userId);
      checkClose(code, reason);
      return this.control.disconnectUser(userId, code, reason);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // Typed helpers for the seed events of PROTOCOL.md section 5

  /** `progress` is a percentage, clamped to 0..100; a non-number is refused. */
  async sendUploadProgress(userId: string, uploadId: string, progress: number): Promise<number> {
    return this.sendToUser(userId, ServerMessageType.UPLOAD_PROGRESS, {
      upload_id: uploadId,
      progress: percentage(progress),
      timestamp: isoNow(),
    });
  }

  sendUploadCompleted(userId: string, uploadId: string, result: unknown): Promise<number> {
    return this.sendToUser(userId, ServerMessageType.UPLOAD_COMPLETED, {
      upload_id: uploadId,
      result,
      timestamp: isoNow(),
    });
  }

  sendUploadError(userId: string, uploadId: string, error: string): Promise<number> {
    return this.sendToUser(userId, ServerMessageType.UPLOAD_ERROR, {
      upload_id: uploadId,
      error,
      timestamp: isoNow(),
    });
  }

  sendUploadCancelled(userId: string, uploadId: string): Promise<number> {
    return this.sendToUser(userId, ServerMessageType.UPLOAD_CANCELLED, {
      upload_id: uploadId,
      timestamp: isoNow(),
    });
  }

  /** To the subscribers of `review.created`. */
  sendReviewCreated(reviewId: string, changes?: Record<string, unknown>): Promise<number> {
    return this.sendToEvent(ServerMessageType.REVIEW_CREATED, reviewData(reviewId, changes));
  }

  sendReviewUpdated(reviewId: string, changes?: Record<string, unknown>): Promise<number> {
    return this.sendToEvent(ServerMessageType.REVIEW_UPDATED, reviewData(reviewId, changes));
  }

  sendReviewDeleted(reviewId: string): Promise<number> {
    return this.sendToEvent(ServerMessageType.REVIEW_DELETED, reviewData(reviewId));
  }

  /** To one user when `userId` is given, else to everyone. */
  sendSystemNotification(
    message: string,
    level: NotificationLevel = 'info',
    userId?: string,
  ): Promise<number> {
    const data = { message, level, timestamp: isoNow() };
    return userId === undefined
      ? this.broadcast(ServerMessageType.SYSTEM_NOTIFICATION, data)
      : this.sendToUser(userId, ServerMessageType.SYSTEM_NOTIFICATION, data);
  }

  /** To everyone. */
  sendSystemMaintenance(message: string, startsAt?: Date): Promise<number> {
    return this.broadcast(ServerMessageType.SYSTEM_MAINTENANCE, {
      message,
      ...(startsAt ? { starts_at: startsAt.toISOString() } : {}),
      timestamp: isoNow(),
    });
  }

  /** To the subscribers of `user.status_changed`. */
  sendUserStatusChanged(userId: string, status: string): Promise<number> {
    return this.sendToEvent(ServerMessageType.USER_STATUS_CHANGED, {
      user_id: userId,
      status,
      timestamp: isoNow(),
    });
  }

  async sendFileProcessing(userId: string, fileId: string, progress?: number): Promise<number> {
    return this.sendToUser(userId, ServerMessageType.FILE_PROCESSING, {
      file_id: fileId,
      status: 'processing',
      ...(progress === undefined ? {} : { progress: percentage(progress) }),
      timestamp: isoNow(),
    });
  }

  sendFileReady(userId: string, fileId: string): Promise<number> {
    return this.sendToUser(userId, ServerMessageType.FILE_READY, {
      file_id: fileId,
      status: 'ready',
      timestamp: isoNow(),
    });
  }
}

/** Throws for a name `rule` refuses: a room no room, or a user id no user, may have. */
function checkName(rule: NameRule, value: unknown): void {
  const problem = nameProblem(rule, value);
  if (problem !== undefined) throw new RealtimeSendError('INVALID_MESSAGE_FORMAT', problem);
}

/**
 * Throws for a close ws cannot send: it would throw inside the close, and the connection would be
 * dropped without a close frame here, or kept open on the instance that refused the request.
 */
function checkClose(code: unknown, reason: unknown): void {
  const problem = closeProblem(code, reason);
  if (problem !== undefined) throw new RealtimeSendError('INVALID_MESSAGE_FORMAT', problem);
}

/** Throws for a room or a member's user id that {@link checkName} refuses. */
function checkMember(room: string, member: RoomMember): void {
  checkName(ROOM_RULE, room);
  if ('userId' in member) checkName(USER_ID_RULE, member.userId);
}

/**
 * Why a send could reach nobody by construction, if so: a room, event or user no connection can
 * be in, subscribe to or be (an event target must be a name `subscribe` accepts).
 */
function targetProblem(target: DeliveryTarget): string | undefined {
  switch (target.kind) {
    case 'room':
      return nameProblem(ROOM_RULE, target.room);
    case 'event':
      return nameProblem(EVENT_RULE, target.event);
    case 'users': {
      const { userIds } = target;
      if (!Array.isArray(userIds)) return 'userIds must be an array of user ids';
      for (let i = 0; i < userIds.length; i++) {
        const problem = nameProblem(
          USER_ID_RULE,
          userIds[i],
          userIds.length === 1 ? undefined : `userIds[${i}]`,
        );
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    case 'all':
      return target.exceptUserId === undefined
        ? undefined
        : nameProblem(USER_ID_RULE, target.exceptUserId, 'exceptUserId');
    case 'connection':
      return undefined;
  }
}

function percentage(value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RealtimeSendError(
      'INVALID_MESSAGE_FORMAT',
      `progress must be a finite number, got ${String(value)}`,
    );
  }
  return Math.min(100, Math.max(0, value));
}

function reachedOf(result: PublishResult): number {
  return result.reached;
}

function reviewData(reviewId: string, changes?: Record<string, unknown>): MessageData {
  return { review_id: reviewId, ...(changes ? { changes } : {}), timestamp: isoNow() };
}
