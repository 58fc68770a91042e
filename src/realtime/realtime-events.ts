import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Subject } from 'rxjs';
import type { JsonObject } from '../protocol/index.js';

export interface ConnectionOpenedEvent {
  connectionId: string;
  userId: string;
  remoteAddress: string;
  connectedAt: Date;
}

export interface ConnectionClosedEvent {
  connectionId: string;
  userId: string;
  /** WebSocket close code. */
  code: number;
  reason: string;
}

export interface InboundMessageEvent {
  connectionId: string;
  userId: string;
  type: string;
  data: JsonObject;
  id?: string;
}

export interface UploadCancelRequest {
  connectionId: string;
  userId: string;
  uploadId: string;
}

/** The subjects behind RealtimeService's streams. Internal: hosts read the observables. */
@Injectable()
export class RealtimeEvents implements OnApplicationShutdown {
  readonly opened = new Subject<ConnectionOpenedEvent>();
  readonly closed = new Subject<ConnectionClosedEvent>();
  readonly messages = new Subject<InboundMessageEvent>();
  readonly uploadCancels = new Subject<UploadCancelRequest>();

  onApplicationShutdown(): void {
    for (const subject of [this.opened, this.closed, this.messages, this.uploadCancels]) {
      subject.complete();
    }
  }
}
