import type { StreamPosition } from '../../protocol/index.js';

/** Whom a message is for. */
export type DeliveryTarget =
  | { kind: 'connection'; connectionId: string }
  | { kind: 'users'; userIds: string[] }
  | { kind: 'event'; event: string }
  | { kind: 'room'; room: string }
  | { kind: 'all'; exceptUserId?: string };

/** A message on its way to connections: serialized once by the sender, for every recipient. */
export interface OutboundMessage {
  id: string;
  type: string;
  target: DeliveryTarget;
  /** The whole server envelope, already JSON, without its stream position. */
  frame: string;
  /** Where the message sits in its stream; added to the frame on delivery (section 9). */
  position?: StreamPosition;
}
