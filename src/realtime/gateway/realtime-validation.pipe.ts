import { type ArgumentMetadata, ValidationPipe, type ValidationError } from '@nestjs/common';
import { ErrorCode } from '../../protocol/index.js';
import { RealtimeException } from './realtime.exception.js';
import { NO_SHORTCUT, validationShortcut } from './validation-shortcut.js';

/**
 * DTO validation for message handlers. Unknown fields are stripped, not refused (PROTOCOL.md
 * section 6); a failure answers INVALID_MESSAGE_FORMAT instead of Nest's HTTP error, which a
 * gateway would report as an internal error (nestjs/nest#3476).
 *
 * Flat payloads that pass take a check compiled once per DTO class ({@link validationShortcut});
 * everything else, and every failure, goes through ValidationPipe itself.
 */
export class RealtimeValidationPipe extends ValidationPipe {
  constructor() {
    super({
      transform: true,
      whitelist: true,
      forbidNonWhitelisted: false,
      forbidUnknownValues: true,
      validationError: { target: false, value: false },
      exceptionFactory: (errors: ValidationError[]) =>
        new RealtimeException(ErrorCode.INVALID_MESSAGE_FORMAT, describe(errors)),
    });
  }

  override transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const shortcut = validationShortcut(this);
    const result = shortcut ? shortcut(value, metadata) : NO_SHORTCUT;
    return result === NO_SHORTCUT ? super.transform(value, metadata) : Promise.resolve(result);
  }
}

export function createRealtimeValidationPipe(): RealtimeValidationPipe {
  return new RealtimeValidationPipe();
}

function describe(errors: ValidationError[]): string {
  const parts = constraintTexts(errors, '');
  return parts.length > 0 ? `Invalid data: ${parts.join('; ')}` : 'Invalid data';
}

/** Each failed constraint's text, its property named by its path (`positions.0.stream`). */
function constraintTexts(errors: ValidationError[], parent: string): string[] {
  const parts: string[] = [];
  for (const error of errors) {
    const path = parent ? `${parent}.${error.property}` : error.property;
    for (const text of Object.values(error.constraints ?? {}))
      parts.push(text.replace(error.property, path));
    if (error.children?.length) parts.push(...constraintTexts(error.children, path));
  }
  return parts;
}
