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
