import type { OutboundMessage } from './delivery-target.js';

/** Delivers a message to this instance's connections; returns how many were reached. */
export type LocalDeliver = (message: OutboundMessage) => number;

/**
 * Carries messages between instances. Every send goes through it; delivery to the sockets of
 * this instance happens in the one function given to {@link subscribe}.
 */
export abstract class RealtimeBus {
  /** Hands the message to every instance, this one included; resolves to connections reached. */
  abstract publish(message: OutboundMessage): Promise<number>;
  /** Sets the function that delivers messages to this instance's connections. */
  abstract subscribe(deliver: LocalDeliver): void;
  abstract close(): Promise<void>;
}
