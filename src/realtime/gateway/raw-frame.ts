import type { RawData } from 'ws';
import { parseClientMessage } from '../../protocol/index.js';

/** The id of a refused message, when it had a valid one (at most 2x the limit per window). */
export function replyIdOf(text: string): string | undefined {
  const parsed = parseClientMessage(text);
  return parsed.ok ? parsed.message.id : parsed.id;
}

export function toText(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  return Buffer.from(raw).toString('utf8');
}

export function byteLength(raw: RawData): number {
  if (Array.isArray(raw)) return raw.reduce((sum, part) => sum + part.length, 0);
  return raw.byteLength;
}
