import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import {
  ClientMessageType,
  ErrorCode,
  type ResumeResultData,
  ServerMessageType,
} from '../../protocol/index.js';
import { EventNamesDto } from '../dto/event-names.dto.js';
import { PingDto } from '../dto/ping.dto.js';
import { ResumeDto } from '../dto/resume.dto.js';
import { UnsubscribeDto } from '../dto/unsubscribe.dto.js';
import { UploadCancelDto } from '../dto/upload-cancel.dto.js';
import { RealtimeEvents } from '../realtime-events.js';
import { ResumeService } from '../recovery/resume.service.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import { SubscriptionService } from '../subscriptions/subscription.service.js';
import { CurrentConnection } from './current-connection.decorator.js';
import { isoNow } from './iso-clock.js';
import type { RealtimeReply } from './message-dispatcher.js';
import { RealtimeGateway } from './realtime-gateway.decorator.js';
import { monotonicNow } from '../monotonic-clock.js';

/** The client messages of PROTOCOL.md section 4. Rules live in services; these stay a few lines. */
@RealtimeGateway()
export class RealtimeProtocolGateway {
  constructor(
    private readonly subscriptions: SubscriptionService,
    private readonly events: RealtimeEvents,
    private readonly recovery: ResumeService,
  ) {}

  @SubscribeMessage(ClientMessageType.PING)
  ping(
    @MessageBody() dto: PingDto,
    @CurrentConnection() connection: RealtimeConnection,
  ): RealtimeReply {
    connection.lastHeartbeat = monotonicNow();
    return {
      type: ServerMessageType.PONG,
      data: { timestamp: isoNow(), pingId: dto.pingId },
    };
  }

  @SubscribeMessage(ClientMessageType.HEARTBEAT)
  heartbeat(@CurrentConnection() connection: RealtimeConnection): void {
    connection.lastHeartbeat = monotonicNow();
  }

  @SubscribeMessage(ClientMessageType.PONG)
  pong(@CurrentConnection() connection: RealtimeConnection): void {
    connection.lastHeartbeat = monotonicNow();
  }

  @SubscribeMessage(ClientMessageType.SUBSCRIBE)
  async subscribe(
    @MessageBody() dto: EventNamesDto,
    @CurrentConnection() connection: RealtimeConnection,
  ): Promise<RealtimeReply[]> {
    const result = await this.subscriptions.subscribe(connection, dto.events);
    const replies: RealtimeReply[] = [
      { type: ServerMessageType.SUBSCRIPTION_ACKNOWLEDGED, data: result },
    ];
    if (result.events.length === 0) {
      replies.push({
        type: ServerMessageType.ERROR,
        data: {
          code: ErrorCode.SUBSCRIPTION_FAILED,
          message: `No event could be subscribed: ${result.invalid_events.join(', ')}`,
        },
      });
    }
    return replies;
  }

  @SubscribeMessage(ClientMessageType.UNSUBSCRIBE)
  unsubscribe(
    @MessageBody() dto: UnsubscribeDto,
    @CurrentConnection() connection: RealtimeConnection,
  ): RealtimeReply {
    const events = this.subscriptions.unsubscribe(connection, dto.events);
    return { type: ServerMessageType.UNSUBSCRIPTION_ACKNOWLEDGED, data: { events } };
  }

  @SubscribeMessage(ClientMessageType.UPLOAD_CANCEL)
  uploadCancel(
    @MessageBody() dto: UploadCancelDto,
    @CurrentConnection() connection: RealtimeConnection,
  ): RealtimeReply {
    this.events.uploadCancels.next({
      connectionId: connection.id,
      userId: connection.userId,
      uploadId: dto.upload_id,
    });
    return {
      type: ServerMessageType.UPLOAD_CANCEL_ACKNOWLEDGED,
      data: { upload_id: dto.upload_id },
    };
  }

  @SubscribeMessage(ClientMessageType.RESUME)
  async resume(
    @MessageBody() dto: ResumeDto,
    @CurrentConnection() connection: RealtimeConnection,
  ): Promise<RealtimeReply> {
    // `resume` is a section-4 type: without a history it is still answered, nothing recovered,
    // so that a client reloads its state instead of handling an error.
    const result: ResumeResultData = this.recovery.enabled
      ? await this.recovery.resume(connection, dto.positions)
      : {
          recovered: false,
          streams: dto.positions.map(({ stream }) => ({
            stream,
            recovered: false,
            replayed: 0,
            reason: 'no_history',
          })),
        };
    return { type: ServerMessageType.RESUME_RESULT, data: result };
  }
}
