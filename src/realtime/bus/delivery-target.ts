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
  /** The whole server envelope, already JSON. */
  frame: string;
}
