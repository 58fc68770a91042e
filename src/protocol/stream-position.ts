/**
 * Positions in a message stream (PROTOCOL.md section 9): every message from a send carries the
 * stream it belongs to, its offset there and the epoch of the stream's history.
 */
export interface StreamPosition {
  /** `user:<id>`, `event:<name>`, `room:<name>` or `all`. */
  stream: string;
  /** Increases within the stream: decimal digits, optionally `<digits>-<digits>`. */
  offset: string;
  /** Names the stream's history; a new epoch means older offsets mean nothing any more. */
  epoch: string;
}

/** The stream every message to everyone belongs to. */
export const ALL_STREAM = 'all';

export const userStream = (userId: string): string => `user:${userId}`;
export const eventStream = (event: string): string => `event:${event}`;
export const roomStream = (room: string): string => `room:${room}`;

/** Most positions one `resume` may carry. */
export const MAX_RESUME_POSITIONS = 100;

const OFFSET = /^\d{1,20}(-\d{1,20})?$/;

export function isOffset(value: unknown): value is string {
  return typeof value === 'string' && OFFSET.test(value);
}

/**
 * Orders two offsets of one stream: negative when `a` comes first. Offsets are compared part by
 * part as numbers, so that "9" < "10" and "1700000000000-9" < "1700000000000-10".
 */
export function compareOffsets(a: string, b: string): number {
  const [aHigh = '0', aLow = '0'] = a.split('-');
  const [bHigh = '0', bLow = '0'] = b.split('-');
  return compareDigits(aHigh, bHigh) || compareDigits(aLow, bLow);
}

function compareDigits(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}
