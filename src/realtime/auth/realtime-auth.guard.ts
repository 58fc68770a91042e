import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { CloseCode, CloseReason } from '../../protocol/index.js';
import { RealtimeException } from '../gateway/realtime.exception.js';
import { connectionOf } from '../registry/realtime-connection.js';
import { isExpired } from './realtime-principal.js';

/**
 * Re-checks, on every message, that the socket carries a principal and that its token is still
 * valid. Guards do not run at connect (nestjs/nest#882); admission verified the token there.
 * Free of dependencies so that it works in any module that declares a realtime gateway.
 */
@Injectable()
export class RealtimeAuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const connection = connectionOf(context.switchToWs().getClient<WebSocket>());
    if (!connection || connection.closing) {
      throw new RealtimeException('UNAUTHORIZED', 'Not authenticated', {
        code: CloseCode.UNAUTHORIZED,
        reason: CloseReason.UNAUTHORIZED,
      });
    }
    if (isExpired(connection.principal)) {
      throw new RealtimeException('UNAUTHORIZED', 'Token expired', {
        code: CloseCode.UNAUTHORIZED,
        reason: CloseReason.TOKEN_EXPIRED,
      });
    }
    return true;
  }
}
