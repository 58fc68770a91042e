import type { ErrorCode } from './error-codes.js';

/** JSON object values as they appear on the wire. */
export type JsonObject = { [key: string]: unknown };

/** A message from a client, after it passed {@link parseClientMessage}. */
export interface ClientEnvelope {
  type: string;
  data?: JsonObject;
  timestamp?: string;
  id?: string;
}

/** A message from the server. */
export interface ServerEnvelope<TData = JsonObject> {
  type: string;
  data: TData;
  /** ISO-8601 UTC. */
  timestamp: string;
  /** UUID v4, the same for every recipient of one send. */
  id: string;
  /** The `id` of the client message this answers, when it had one. */
  in_reply_to?: string;
  /** Set on admin broadcasts. */
  source?: string;
  /** Where a message from a send sits in its stream (section 9); absent on direct replies. */
  stream?: string;
  offset?: string;
  epoch?: string;
}

export type ParseResult =
  | { ok: true; message: ClientEnvelope }
  /** `id` is the message's own id when it had a valid one, so the error can answer it. */
  | { ok: false; code: ErrorCode; message: string; id?: string };

/** Deepest nesting of objects and arrays accepted in one client message. */
export const MAX_JSON_DEPTH = 32;
/** Longest `type` and `id` accepted; both are echoed or used as keys. */
export const MAX_TYPE_LENGTH = 100;
export const MAX_ID_LENGTH = 128;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * True when `text` nests objects or arrays deeper than `limit`. Runs before JSON.parse so that a
 * hostile message is refused before any recursive work is done on it.
 */
export function exceedsJsonDepth(text: string, limit = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Why `data` would not arrive as the JSON object it is, if so: JSON encodes a Map or Set as `{}`
 * and an object with a `toJSON` (a Date) as whatever that returns.
 */
export function jsonObjectProblem(data: unknown): string | undefined {
  if (!isJsonObject(data)) return 'data must be a JSON object';
  if (data instanceof Map || data instanceof Set) {
    return `data must be a JSON object, not a ${data instanceof Map ? 'Map' : 'Set'} (encoded as {})`;
  }
  const { toJSON } = data as { toJSON?: unknown };
  if (typeof toJSON !== 'function') return undefined;
  try {
    if (isJsonObject(toJSON.call(data, 'data'))) return undefined;
  } catch (error) {
    return `data cannot be encoded as JSON: ${error instanceof Error ? error.message : String(error)}`;
  }
  return 'data must encode to a JSON object; its toJSON() returns something else';
}

// Ids are echoed back as `in_reply_to` and may land in logs: no control characters, and no
// lone surrogates (half a character: not valid Unicode, so not printable in any log or client).
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function invalid(
  message: string,
  id?: string,
  code: ErrorCode = 'INVALID_MESSAGE_FORMAT',
): ParseResult {
  return { ok: false, code, message, ...(id === undefined ? {} : { id }) };
}

function isValidId(id: unknown): id is string {
  return (
    typeof id === 'string' &&
    id.length <= MAX_ID_LENGTH &&
    !CONTROL_CHARACTERS.test(id) &&
    !LONE_SURROGATE.test(id)
  );
}

/** Parses one text frame from a client into an envelope, or says why it is not one. */
export function parseClientMessage(text: string): ParseResult {
  if (exceedsJsonDepth(text)) {
    return invalid(`Message is nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return invalid('Message is not valid JSON');
  }
  if (!isJsonObject(parsed)) return invalid('Message must be a JSON object');
  const { type, data, timestamp, id } = parsed;
  if (id !== undefined && !isValidId(id)) {
    return invalid(`"id" must be a string of at most ${MAX_ID_LENGTH} printable characters`);
  }
  if (typeof type !== 'string' || type.length === 0) {
    return invalid('Message needs a string "type"', id);
  }
  if (type.length > MAX_TYPE_LENGTH) {
    // A string type, just not one of section 4: INVALID_MESSAGE_TYPE, as for any unknown type
    // (PROTOCOL.md section 6); refused here so that it is neither echoed nor looked up.
    return invalid(
      `Unknown message type (longer than ${MAX_TYPE_LENGTH} characters)`,
      id,
      'INVALID_MESSAGE_TYPE',
    );
  }
  if (data !== undefined && !isJsonObject(data)) return invalid('"data" must be an object', id);
  if (timestamp !== undefined && typeof timestamp !== 'string') {
    return invalid('"timestamp" must be a string', id);
  }
  return { ok: true, message: { type, data, timestamp, id } };
}

/** Serializes a server message; field order is fixed so that frames are easy to read. */
export function encodeServerMessage(envelope: ServerEnvelope<unknown>): string {
  return JSON.stringify(envelope);
}
