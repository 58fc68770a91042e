import {
  isJsonObject,
  isOffset,
  type ResumeStreamResult,
  type SubscriptionAcknowledgedData,
} from '../protocol/index.js';
import { ClientErrorCode, RealtimeClientError } from './errors.js';

/**
 * Checks of the server replies whose contents the client acts on (rather than only hands to the
 * app): a malformed one must be reported, not throw in the middle of a reconnect.
 */

/** The data of a subscribe acknowledgement; `invalid_events` may be left out. */
export function subscriptionAck(data: unknown): SubscriptionAcknowledgedData | undefined {
  if (!isJsonObject(data) || !isStringArray(data.events)) return undefined;
  const invalid = data.invalid_events ?? [];
  if (!isStringArray(invalid)) return undefined;
  return { events: data.events, invalid_events: invalid };
}

/** The `streams` of `resume.result` or `stream.resync`, when every entry is well formed. */
export function streamResults(value: unknown): ResumeStreamResult[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const results: ResumeStreamResult[] = [];
  for (const entry of value) {
    if (
      !isJsonObject(entry) ||
      typeof entry.stream !== 'string' ||
      typeof entry.recovered !== 'boolean' ||
      typeof entry.replayed !== 'number' ||
      !(entry.reason === undefined || typeof entry.reason === 'string') ||
      !(entry.epoch === undefined || typeof entry.epoch === 'string') ||
      !(entry.offset === undefined || isOffset(entry.offset))
    ) {
      return undefined;
    }
    results.push(entry as unknown as ResumeStreamResult);
  }
  return results;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** The error for a reply of `type` that failed these checks; `consequence` says what is lost. */
export function malformedReply(
  type: string,
  requestId: string | undefined,
  consequence?: string,
): RealtimeClientError {
  const message = consequence ? `Malformed ${type}: ${consequence}` : `Malformed ${type}`;
  return new RealtimeClientError(ClientErrorCode.INVALID_SERVER_MESSAGE, message, { requestId });
}
