import { ValidationPipe } from '@nestjs/common';

/**
 * Validation of the demo's HTTP bodies. Unknown keys are refused, not stripped: a misspelled
 * `admin` (`{"user_id":"a","Admin":true}`) would otherwise quietly mint a non-admin token. Applied
 * per controller, not as an app-wide pipe, so that the chat gateway keeps the module's own
 * message validation, which ignores keys it does not know (PROTOCOL.md: extended by adding).
 */
export function demoBodyPipe(): ValidationPipe {
  return new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });
}
