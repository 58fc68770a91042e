import type {
  ConnectionEstablishedData,
  FileStatusData,
  JsonObject,
  PongData,
  ResumeResultData,
  ResumeStreamResult,
  ReviewData,
  ServerEnvelope,
  SubscriptionAcknowledgedData,
  SystemMaintenanceData,
  SystemNotificationData,
  UnsubscriptionAcknowledgedData,
  UploadCancelAcknowledgedData,
  UploadCancelledData,
  UploadCompletedData,
  UploadErrorData,
  UploadProgressData,
  UserStatusChangedData,
} from '../protocol/index.js';
import type { StateChange } from './connection-state.js';
import type { RealtimeClientError } from './errors.js';

/** Data of the server message types with a known shape (PROTOCOL.md section 5). */
export interface ServerDataMap {
  'connection.established': ConnectionEstablishedData;
  pong: PongData;
  'subscription.acknowledged': SubscriptionAcknowledgedData;
  'unsubscription.acknowledged': UnsubscriptionAcknowledgedData;
  'upload.cancel.acknowledged': UploadCancelAcknowledgedData;
  'upload.progress': UploadProgressData;
  'upload.completed': UploadCompletedData;
  'upload.error': UploadErrorData;
  'upload.cancelled': UploadCancelledData;
  'review.created': ReviewData;
  'review.updated': ReviewData;
  'review.deleted': ReviewData;
  'system.notification': SystemNotificationData;
  'system.maintenance': SystemMaintenanceData;
  'user.status_changed': UserStatusChangedData;
  'file.processing': FileStatusData;
  'file.ready': FileStatusData;
}

/** How a connection ended, and whether the client will try again. */
export interface CloseInfo {
  code: number;
  reason: string;
  willReconnect: boolean;
}

/** Events about the client itself rather than one server message type. */
export interface LifecycleEvents {
  /** Every state change, from the single place that changes state. */
  state: StateChange;
  /** Every server message, before the handlers of its type. */
  message: ServerEnvelope;
  /** `error` messages not tied to a request, and failures with no caller to reject. */
  error: RealtimeClientError;
  /** `connection.established` of each (re)connection. */
  established: ConnectionEstablishedData;
  /** Each closed connection. */
  close: CloseInfo;
  /** After a reconnect: what the replay of missed messages recovered (`recovered` says all). */
  resumed: ResumeResultData;
  /** Some streams could not be recovered in full: reload the state they feed. */
  resync: ResyncInfo;
}

/** The streams whose missed messages could not all be replayed, and why. */
export interface ResyncInfo {
  streams: ResumeStreamResult[];
}

/** The handler for `type`: lifecycle payload, typed server data, or plain JSON data. */
export type ClientEventHandler<K extends string> = K extends keyof LifecycleEvents
  ? (payload: LifecycleEvents[K]) => void
  : K extends keyof ServerDataMap
    ? (data: ServerDataMap[K], envelope: ServerEnvelope<ServerDataMap[K]>) => void
    : (data: JsonObject, envelope: ServerEnvelope) => void;
