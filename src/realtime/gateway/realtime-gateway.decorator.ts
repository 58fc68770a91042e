import { applyDecorators, UseFilters, UseGuards, UsePipes } from '@nestjs/common';
import { WebSocketGateway } from '@nestjs/websockets';
import { RealtimeAuthGuard } from '../auth/realtime-auth.guard.js';
import { RealtimeExceptionFilter } from './realtime-exception.filter.js';
import { createRealtimeValidationPipe } from './realtime-validation.pipe.js';

/**
 * Marks a class whose `@SubscribeMessage(type)` methods handle client messages on the realtime
 * endpoint, with the module's auth guard, DTO validation and error replies. Rate limiting and
 * envelope checks apply to every message before it reaches a handler.
 *
 * ```ts
 * @RealtimeGateway()
 * export class ChatGateway {
 *   @SubscribeMessage('chat.send')
 *   send(@MessageBody() dto: ChatSendDto, @CurrentConnection() connection: RealtimeConnection) {
 *     return { type: 'chat.sent', data: { id: dto.id } };
 *   }
 * }
 * ```
 */
export function RealtimeGateway(): ClassDecorator {
  return applyDecorators(
    WebSocketGateway(),
    UseGuards(RealtimeAuthGuard),
    UsePipes(createRealtimeValidationPipe()),
    UseFilters(RealtimeExceptionFilter),
  );
}
