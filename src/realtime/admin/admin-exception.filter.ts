import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  Logger,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';

/** Admin API errors as `{ status: "error", error: { code, message } }`, never a stack trace. */
@Catch()
export class AdminExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('RealtimeAdmin');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<ServerResponse>();
    if (exception instanceof HttpException) {
      sendAdminError(response, exception);
      return;
    }
    this.logger.error({
      event: 'admin.failed',
      error: exception instanceof Error ? exception.message : String(exception),
    });
    writeAdminError(response, 500, 'Internal server error');
  }
}

/** Answers `exception` in the admin shape, with its status and message. */
export function sendAdminError(response: ServerResponse, exception: HttpException): void {
  const body = exception.getResponse();
  const raw = typeof body === 'string' ? body : (body as { message?: unknown }).message;
  const message = Array.isArray(raw) ? raw.join('; ') : String(raw ?? exception.message);
  writeAdminError(response, exception.getStatus(), message);
}

function writeAdminError(response: ServerResponse, status: number, message: string): void {
  response.statusCode = status;
  response.setHeader('content-type', 'application/json; charset=utf-8');
  response.end(JSON.stringify({ status: 'error', error: { code: status, message } }));
}
