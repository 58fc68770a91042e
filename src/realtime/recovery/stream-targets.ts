import { ALL_STREAM, eventStream, roomStream, userStream } from '../../protocol/index.js';
import type { DeliveryTarget } from '../bus/delivery-target.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';

/** One stream of a send, and the recipients of that stream's copy of the message. */
export interface StreamTarget {
  stream: string;
  target: DeliveryTarget;
}

/**
 * The streams a send goes to (PROTOCOL.md section 9). A send to several users is one copy per
 * user, since each user's stream has its own offsets; a send to one connection has no stream
 * (a new connection after a reconnect could not ask for it).
 */
export function streamTargets(target: DeliveryTarget): StreamTarget[] {
  switch (target.kind) {
    case 'connection':
      return [];
    case 'users':
      return [...new Set(target.userIds)].map((userId) => ({
        stream: userStream(userId),
        target: { kind: 'users', userIds: [userId] },
      }));
    case 'event':
      return [{ stream: eventStream(target.event), target }];
    case 'room':
      return [{ stream: roomStream(target.room), target }];
    case 'all':
      return [{ stream: ALL_STREAM, target }];
  }
}

/** Who reads `stream` now: the recipients of a message of it (the inverse of the above). */
export function streamReaders(stream: string, exceptUserId?: string): DeliveryTarget | undefined {
  if (stream === ALL_STREAM) return { kind: 'all', exceptUserId };
  const colon = stream.indexOf(':');
  const name = stream.slice(colon + 1);
  switch (stream.slice(0, colon)) {
    case 'user':
      return { kind: 'users', userIds: [name] };
    case 'event':
      return { kind: 'event', event: name };
    case 'room':
      return { kind: 'room', room: name };
    default:
      return undefined;
  }
}

/** Streams a connection may read now: its user's, everyone's, its events' and its rooms'. */
export function mayRead(connection: RealtimeConnection, stream: string): boolean {
  if (stream === ALL_STREAM || stream === userStream(connection.userId)) return true;
  if (stream.startsWith('event:')) return connection.subscriptions.has(stream.slice(6));
  if (stream.startsWith('room:')) return connection.rooms.has(stream.slice(5));
  return false;
}
