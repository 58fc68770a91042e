import assert from 'node:assert/strict';
import { RealtimeSendError } from '../../src/realtime/index.js';

/** For assert.throws/rejects: a RealtimeSendError INVALID_MESSAGE_FORMAT matching `pattern`. */
export function invalidFormat(pattern: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof RealtimeSendError, String(error));
    assert.equal(error.code, 'INVALID_MESSAGE_FORMAT');
    assert.match(error.message, pattern);
    return true;
  };
}
