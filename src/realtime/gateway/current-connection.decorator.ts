import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { connectionOf } from '../registry/realtime-connection.js';

/** Injects the {@link RealtimeConnection} that sent the message into a handler parameter. */
export const CurrentConnection = createParamDecorator((_data: unknown, context: ExecutionContext) =>
  connectionOf(context.switchToWs().getClient<WebSocket>()),
);
