import {
  type ArgumentsHost,
  Catch,
  HttpException,
  HttpStatus,
  Logger,
  type WsExceptionFilter,
} from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import { ErrorCode, isJsonObject } from '../../protocol/index.js';
import { type HandlerFailure, InboundContext } from './inbound-context.js';
import { RealtimeException } from './realtime.exception.js';

/** Added to PROTOCOL.md's codes: a host handler refused the request with a WsException. */
export const REQUEST_REJECTED = 'REQUEST_REJECTED';

/**
 * Turns whatever a handler, guard or pipe threw into a protocol error. Nest's default filter
 * would emit an `exception` event that a `ws` client never receives.
 */
@Catch()
export class RealtimeExceptionFilter implements WsExceptionFilter {
  private static readonly logger = new Logger('RealtimeHandlers');

  catch(exception: unknown, host: ArgumentsHost): void {
    const context: unknown = host.getArgByIndex(2);
    const failure = toHandlerFailure(exception);
    if (context instanceof InboundContext) {
      context.failure = failure;
    } else {
      RealtimeExceptionFilter.logger.error({
        event: 'handler.failed_outside_dispatch',
        ...failure,
      });
    }
  }
}

export function toHandlerFailure(exception: unknown): HandlerFailure {
  if (exception instanceof RealtimeException) {
    return { code: exception.code, message: exception.message, close: exception.close };
  }
  if (exception instanceof WsException) {
    const error = exception.getError();
    if (
      isJsonObject(error) &&
      typeof error.code === 'string' &&
      typeof error.message === 'string'
    ) {
      return { code: error.code, message: error.message };
    }
    return {
      code: REQUEST_REJECTED,
      message: typeof error === 'string' ? error : 'Request rejected',
    };
  }
  if (exception instanceof HttpException) {
    // A host's global ValidationPipe (or an HTTP-minded guard) throws these at gateways too.
    const code =
      exception.getStatus() === HttpStatus.BAD_REQUEST
        ? ErrorCode.INVALID_MESSAGE_FORMAT
        : REQUEST_REJECTED;
    return { code, message: httpMessage(exception) };
  }
  RealtimeExceptionFilter['logger'].error({
    event: 'handler.failed',
    error: exception instanceof Error ? exception.message : String(exception),
    stack: exception instanceof Error ? exception.stack : undefined,
  });
  // Never the error's own text: it may hold internal paths or data.
  return { code: ErrorCode.INTERNAL_ERROR, message: 'The server failed to handle this message' };
}

function httpMessage(exception: HttpException): string {
  const body = exception.getResponse();
  const raw = typeof body === 'string' ? body : (body as { message?: unknown }).message;
  if (Array.isArray(raw)) return `Invalid data: ${raw.map(String).join('; ')}`;
  return typeof raw === 'string' ? raw : exception.message;
}
