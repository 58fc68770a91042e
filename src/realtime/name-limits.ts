import { MAX_TYPE_LENGTH } from '../protocol/index.js';

/**
 * Longest room name. Rooms become registry and stats keys and stream names (`room:<name>`), so
 * they are bounded like the event names a client may subscribe to (200).
 */
export const MAX_ROOM_NAME_LENGTH = 200;

/**
 * Longest event name: what `subscribe` accepts (EventNamesDto), so that an event target names
 * something a client can subscribe to.
 */
export const MAX_EVENT_NAME_LENGTH = 200;

/** What `subscribe` accepts in an event name: printable ASCII without spaces. */
export const EVENT_NAME_PATTERN = /^[\x21-\x7e]+$/;

/** Longest user id: the longest `sub` token verification accepts (TokenVerifier). */
export const MAX_USER_ID_LENGTH = 256;

/**
 * A kind of name: what it is called in errors, its bound in UTF-16 code units and what it may
 * hold. `any`: any string; `text`: no control characters and no lone surrogates; `event`: a name
 * `subscribe` accepts (EVENT_NAME_PATTERN).
 */
export interface NameRule {
  readonly field: string;
  readonly max: number;
  readonly chars: 'any' | 'text' | 'event';
}

export const TYPE_RULE: NameRule = { field: 'type', max: MAX_TYPE_LENGTH, chars: 'any' };
export const ROOM_RULE: NameRule = { field: 'room', max: MAX_ROOM_NAME_LENGTH, chars: 'text' };
export const EVENT_RULE: NameRule = { field: 'event', max: MAX_EVENT_NAME_LENGTH, chars: 'event' };
export const USER_ID_RULE: NameRule = { field: 'user id', max: MAX_USER_ID_LENGTH, chars: 'text' };

// As for message ids (protocol/envelope.ts): C0 controls and DEL are never part of a name and
// turn invisible in logs and listings. With the `u` flag a surrogate matches only when unpaired:
// Redis encodes one as U+FFFD, so two such names would share a key (a stream, a presence entry)
// and read back as neither.
// eslint-disable-next-line no-control-regex
const NOT_TEXT = /[\u0000-\u001f\u007f\ud800-\udfff]/u;

/**
 * Why `value` is not a name of `rule`, or undefined when it is one; `field` names it in the
 * message. Lengths are UTF-16 code units (`String#length`), as the protocol counts a `type` and
 * token verification a `sub`; the admin DTOs and RealtimeService both ask here, so neither lets
 * through what the other refuses.
 */
export function nameProblem(
  rule: NameRule,
  value: unknown,
  field: string = rule.field,
): string | undefined {
  const fits = typeof value === 'string' && value.length > 0 && value.length <= rule.max;
  if (rule.chars === 'event') {
    if (fits && EVENT_NAME_PATTERN.test(value)) return undefined;
    return `${field} must be 1 to ${rule.max} printable ASCII characters, no spaces (a name subscribe accepts)`;
  }
  if (!fits) {
    return `${field} must be a string of 1 to ${rule.max} UTF-16 code units (an emoji counts 2)`;
  }
  if (rule.chars === 'text' && NOT_TEXT.test(value)) {
    return `${field} must not contain control characters or lone surrogates`;
  }
  return undefined;
}
