/** Data of the server messages with a fixed shape (PROTOCOL.md section 5). */

export interface ConnectionLimits {
  max_message_size: number;
  rate_limit_messages: number;
  /** Seconds. */
  rate_limit_window: number;
  /** Seconds. */
  heartbeat_interval: number;
  /** Seconds. */
  connection_timeout: number;
  max_connections_per_user: number;
}

export interface ConnectionEstablishedData {
  connection_id: string;
  user_id: string;
  server_time: string;
  features: string[];
  limits: ConnectionLimits;
}

export interface PongData {
  timestamp: string;
  pingId?: string;
}

export interface SubscriptionAcknowledgedData {
  events: string[];
  invalid_events: string[];
}

export interface UnsubscriptionAcknowledgedData {
  events: string[];
}

export interface UploadCancelAcknowledgedData {
  upload_id: string;
}

export interface UploadProgressData {
  upload_id: string;
  progress: number;
  timestamp: string;
}

export interface UploadCompletedData {
  upload_id: string;
  result: unknown;
  timestamp: string;
}

export interface UploadErrorData {
  upload_id: string;
  error: string;
  timestamp: string;
}

export interface UploadCancelledData {
  upload_id: string;
  timestamp: string;
}

export interface ReviewData {
  review_id: string;
  changes?: Record<string, unknown>;
  timestamp: string;
}

export type NotificationLevel = 'info' | 'warning' | 'error';

export interface SystemNotificationData {
  message: string;
  level: NotificationLevel;
  timestamp: string;
}

export interface SystemMaintenanceData {
  message: string;
  starts_at?: string;
  timestamp: string;
}

export interface UserStatusChangedData {
  user_id: string;
  status: string;
  timestamp: string;
}

export interface FileStatusData {
  file_id: string;
  status: string;
  progress?: number;
  timestamp: string;
}

/** Data of `resume.result` (section 9). */
export interface ResumeResultData {
  /** True when every stream's gap was replayed in full. */
  recovered: boolean;
  streams: ResumeStreamResult[];
}

export interface ResumeStreamResult {
  stream: string;
  recovered: boolean;
  /** Messages replayed for this stream. */
  replayed: number;
  /** Why a stream was not recovered (added): see {@link ResumeFailure}. */
  reason?: ResumeFailure;
  /** The stream's current epoch and last offset (added), to resume from next time. */
  epoch?: string;
  offset?: string;
}

/**
 * Data of `stream.resync` (added to section 9): sent unasked when an instance could not deliver
 * everything of these streams (its bus subscription dropped and the history could not fill the
 * gap); each has `recovered: false` and a reason, like a stream of `resume.result`.
 */
export interface StreamResyncData {
  streams: ResumeStreamResult[];
}

/**
 * - `epoch_changed`: the history was lost (for example a restart of the store);
 * - `gap_too_old`: older messages were already dropped from the history (age or count);
 * - `not_visible`: the stream is not one this connection may read (subscribe first);
 * - `too_late`: the resume came after the resume window of the connection;
 * - `no_history`: the server keeps no message history (`history: false`), so nothing can be replayed;
 * - `too_slow` (added): the client did not drain its send buffer within `closeGraceMs`, so the
 *   replay stopped after `replayed` messages; the rest of the gap was not sent. That wait is
 *   made once per `resume`: the streams after it replay only what fits in the buffer at once.
 * - `history_unavailable` (added): the history could not be read just then (the shared store
 *   unreachable, or refusing the read); nothing more of that stream was replayed.
 */
export type ResumeFailure =
  | 'epoch_changed'
  | 'gap_too_old'
  | 'not_visible'
  | 'too_late'
  | 'no_history'
  | 'too_slow'
  | 'history_unavailable';
