import { randomUUID } from 'node:crypto';

/**
 * The module's wire protocol (docs/PROTOCOL.md), reimplemented for the comparison targets so that
 * every ws target speaks it and the load is the same.
 */
export interface ClientEnvelope {
  type: string;
  id?: string;
  data?: Record<string, unknown>;
}

/** One server message, serialized once: the same string goes to every recipient. */
export function encode(type: string, data: Record<string, unknown>, inReplyTo?: string): string {
  return JSON.stringify({
    type,
    data,
    timestamp: new Date().toISOString(),
    id: randomUUID(),
    ...(inReplyTo === undefined ? {} : { in_reply_to: inReplyTo }),
  });
}

/** A client message, or undefined when it is not a JSON object with a string type. */
export function decode(raw: unknown): ClientEnvelope | undefined {
  try {
    const message: unknown = JSON.parse(String(raw));
    if (typeof message !== 'object' || message === null) return undefined;
    const { type, id, data } = message as Record<string, unknown>;
    if (typeof type !== 'string') return undefined;
    return {
      type,
      ...(typeof id === 'string' ? { id } : {}),
      ...(typeof data === 'object' && data !== null
        ? { data: data as Record<string, unknown> }
        : {}),
    };
  } catch {
    return undefined;
  }
}

/** The subscribe message's event names. */
export function eventsOf(message: ClientEnvelope): string[] {
  const events = message.data?.events;
  return Array.isArray(events) ? events.filter((e): e is string => typeof e === 'string') : [];
}
