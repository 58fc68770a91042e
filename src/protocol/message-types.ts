/** Message types a client may send (PROTOCOL.md section 4). */
export const ClientMessageType = {
  PING: 'ping',
  HEARTBEAT: 'heartbeat',
  PONG: 'pong',
  SUBSCRIBE: 'subscribe',
  UNSUBSCRIBE: 'unsubscribe',
  UPLOAD_CANCEL: 'upload.cancel',
  RESUME: 'resume',
} as const;

export type ClientMessageType = (typeof ClientMessageType)[keyof typeof ClientMessageType];

/** Message types the server sends (PROTOCOL.md section 5). */
export const ServerMessageType = {
  CONNECTION_ESTABLISHED: 'connection.established',
  PONG: 'pong',
  SUBSCRIPTION_ACKNOWLEDGED: 'subscription.acknowledged',
  UNSUBSCRIPTION_ACKNOWLEDGED: 'unsubscription.acknowledged',
  UPLOAD_CANCEL_ACKNOWLEDGED: 'upload.cancel.acknowledged',
  RESUME_RESULT: 'resume.result',
  /** Added: messages of these streams were lost on the server's side; reload their state. */
  STREAM_RESYNC: 'stream.resync',
  ERROR: 'error',
  UPLOAD_PROGRESS: 'upload.progress',
  UPLOAD_COMPLETED: 'upload.completed',
  UPLOAD_ERROR: 'upload.error',
  UPLOAD_CANCELLED: 'upload.cancelled',
  REVIEW_CREATED: 'review.created',
  REVIEW_UPDATED: 'review.updated',
  REVIEW_DELETED: 'review.deleted',
  SYSTEM_NOTIFICATION: 'system.notification',
  SYSTEM_MAINTENANCE: 'system.maintenance',
  USER_STATUS_CHANGED: 'user.status_changed',
  FILE_PROCESSING: 'file.processing',
  FILE_READY: 'file.ready',
} as const;

/** Events a client may subscribe to unless the host configures its own list. */
export const DEFAULT_SUBSCRIBABLE_EVENTS: readonly string[] = [
  'upload.progress',
  'upload.completed',
  'upload.error',
  'upload.cancelled',
  'review.updated',
  'review.created',
  'review.deleted',
  'system.notification',
  'system.maintenance',
  'user.status_changed',
  'file.processing',
  'file.ready',
];

/** Most names one `subscribe` or `unsubscribe` may carry. */
export const MAX_EVENTS_PER_REQUEST = 50;
