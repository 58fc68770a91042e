import { isJsonObject, type JsonObject, type ServerEnvelope } from '../protocol/index.js';

/**
 * The server message in a frame, or undefined for anything that is not one (binary, not JSON,
 * no `type`): such frames are ignored rather than reported. `data` is always an object.
 */
export function parseServerFrame(raw: unknown): ServerEnvelope | undefined {
  if (typeof raw !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isJsonObject(parsed) || typeof parsed.type !== 'string') return undefined;
  const envelope = parsed as unknown as ServerEnvelope;
  if (!isJsonObject(envelope.data)) envelope.data = {};
  return envelope;
}

/** A client message as sent: `type`, then `id` and `data` when present. */
export function encodeFrame(type: string, data?: JsonObject, id?: string): string {
  return JSON.stringify({
    type,
    ...(id === undefined ? {} : { id }),
    ...(data === undefined ? {} : { data }),
  });
}

/**
 * Whether a received frame is larger than `limit` bytes: text counted in UTF-8 (as `ws` counts
 * the frame), binary by its size. Cheap for the usual frame, far below a third of the limit.
 */
export function frameExceeds(raw: unknown, limit: number): boolean {
  if (typeof raw === 'string') {
    // Every UTF-16 unit is 1 to 3 bytes in UTF-8: only lengths in between need counting.
    if (raw.length > limit) return true;
    if (raw.length * 3 <= limit) return false;
    return utf8Length(raw, limit) > limit;
  }
  if (typeof raw !== 'object' || raw === null) return false;
  const { byteLength, size } = raw as { byteLength?: unknown; size?: unknown };
  const bytes = typeof byteLength === 'number' ? byteLength : size;
  return typeof bytes === 'number' && bytes > limit;
}

/** UTF-8 length of `text`, counting stopped once past `stopAbove`; no copy of the text. */
function utf8Length(text: string, stopAbove: number): number {
  let bytes = 0;
  for (let i = 0; i < text.length && bytes <= stopAbove; i++) {
    const unit = text.charCodeAt(i);
    // A surrogate is half of a 4-byte character.
    bytes += unit < 0x80 ? 1 : unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 2 : 3;
  }
  return bytes;
}
