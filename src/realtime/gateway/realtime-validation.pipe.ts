import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { ErrorCode } from '../../protocol/index.js';
import { RealtimeException } from './realtime.exception.js';

/**
 * DTO validation for message handlers. Unknown fields are stripped, not refused (PROTOCOL.md
 * section 6); a failure answers INVALID_MESSAGE_FORMAT instead of Nest's HTTP error, which a
 * gateway would report as an internal error (nestjs/nest#3476).
 */
export function createRealtimeValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    transform: true,
    whitelist: true,
    forbidNonWhitelisted: false,
    forbidUnknownValues: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors: ValidationError[]) =>
      new RealtimeException(ErrorCode.INVALID_MESSAGE_FORMAT, describe(errors)),
  });
}

function describe(errors: ValidationError[], parent = ''): string {
  const parts: string[] = [];
  for (const error of errors) {
    const path = parent ? `${parent}.${error.property}` : error.property;
    for (const text of Object.values(error.constraints ?? {}))
      parts.push(text.replace(error.property, path));
    if (error.children?.length) parts.push(describe(error.children, path));
  }
  return parts.length > 0 ? `Invalid data: ${parts.join('; ')}` : 'Invalid data';
}
