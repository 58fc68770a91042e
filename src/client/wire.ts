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
