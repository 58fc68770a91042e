import { isJsonObject } from '../../protocol/index.js';
import type { DeliveryTarget, OutboundMessage } from './delivery-target.js';

/**
 * What instances say to each other on Redis. Kinds are words, not numbers, so that
 * `redis-cli MONITOR` stays readable.
 */
export type ClusterEnvelope =
  /** A message for every instance's matching connections; `ack` asks for a count back. */
  | { kind: 'deliver'; origin: string; ack?: string; message: OutboundMessage }
  /** How many connections an instance reached for the `deliver` with this `ack`. */
  | { kind: 'ack'; origin: string; ack: string; reached: number }
  /** The instance (re)connected: count it in from now on, without waiting for lease renewals. */
  | { kind: 'join'; origin: string }
  /** The answer to a `join`, sent to the joiner only: "I am here and listening". */
  | { kind: 'welcome'; origin: string }
  /** Sent by an instance to its own inbox: everything published before it has been received. */
  | { kind: 'mark'; origin: string; id: string }
  /** The instance is shutting down: stop waiting for it. */
  | { kind: 'leave'; origin: string }
  /** A question for every instance (or the one whose inbox it was sent to). */
  | { kind: 'request'; origin: string; id: string; topic: string; payload: unknown }
  /** The answer to request `id`; `error` when the handler failed. */
  | { kind: 'response'; origin: string; id: string; answer?: unknown; error?: string };

/** Parses an envelope from the channel; undefined for anything malformed (Redis may be shared). */
export function parseClusterEnvelope(payload: string): ClusterEnvelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!isJsonObject(value) || typeof value.origin !== 'string') return undefined;
  switch (value.kind) {
    case 'deliver':
      return isOutboundMessage(value.message) &&
        (value.ack === undefined || typeof value.ack === 'string')
        ? (value as ClusterEnvelope)
        : undefined;
    case 'ack':
      return typeof value.ack === 'string' && typeof value.reached === 'number'
        ? (value as ClusterEnvelope)
        : undefined;
    case 'join':
    case 'welcome':
    case 'leave':
      return value as ClusterEnvelope;
    case 'mark':
      return typeof value.id === 'string' ? (value as ClusterEnvelope) : undefined;
    case 'request':
      return typeof value.id === 'string' && typeof value.topic === 'string'
        ? (value as ClusterEnvelope)
        : undefined;
    case 'response':
      return typeof value.id === 'string' ? (value as ClusterEnvelope) : undefined;
    default:
      return undefined;
  }
}

function isOutboundMessage(value: unknown): value is OutboundMessage {
  return (
    isJsonObject(value) &&
    typeof value.id === 'string' &&
    typeof value.type === 'string' &&
    typeof value.frame === 'string' &&
    isDeliveryTarget(value.target) &&
    (value.position === undefined || isStreamPosition(value.position))
  );
}

/**
 * A target of a known kind with the fields of that kind: anything else from another publisher
 * on the channel threw during delivery, inside the Redis client's message handler.
 */
function isDeliveryTarget(value: unknown): value is DeliveryTarget {
  if (!isJsonObject(value)) return false;
  switch (value.kind) {
    case 'connection':
      return typeof value.connectionId === 'string';
    case 'users':
      return Array.isArray(value.userIds) && value.userIds.every((id) => typeof id === 'string');
    case 'event':
      return typeof value.event === 'string';
    case 'room':
      return typeof value.room === 'string';
    case 'all':
      return value.exceptUserId === undefined || typeof value.exceptUserId === 'string';
    default:
      return false;
  }
}

function isStreamPosition(value: unknown): boolean {
  return (
    isJsonObject(value) &&
    typeof value.stream === 'string' &&
    typeof value.offset === 'string' &&
    typeof value.epoch === 'string'
  );
}
