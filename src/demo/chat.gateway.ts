import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import {
  CurrentConnection,
  RealtimeGateway,
  type RealtimeConnection,
  type RealtimeReply,
  RealtimeService,
} from '../realtime/index.js';
import { ChatSendDto } from './demo.dto.js';

/**
 * A host-defined message type: `chat.send` gets the module's auth, validation, rate limit and
 * error replies like the built-in types. Messages go to the subscribers of `room:<room>`.
 */
@RealtimeGateway()
export class ChatGateway {
  constructor(private readonly realtime: RealtimeService) {}

  @SubscribeMessage('chat.send')
  async send(
    @MessageBody() dto: ChatSendDto,
    @CurrentConnection() connection: RealtimeConnection,
  ): Promise<RealtimeReply> {
    const event = `room:${dto.room}`;
    const delivered = await this.realtime.publish(
      'chat.message',
      {
        room: dto.room,
        text: dto.text,
        from: connection.userId,
        timestamp: new Date().toISOString(),
      },
      { kind: 'event', event },
    );
    return { type: 'chat.sent', data: { room: dto.room, delivered } };
  }
}
