import type { ClientEnvelope } from '../../protocol/index.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import type { CloseInstruction } from './realtime.exception.js';

/** What a failed handler leaves for the dispatcher to answer. */
export interface HandlerFailure {
  code: string;
  message: string;
  close?: CloseInstruction;
}

/**
 * Travels with one inbound message through Nest's handler pipeline (as its third argument), so
 * that the exception filter can hand the failure back to the dispatcher, which alone replies.
 */
export class InboundContext {
  failure: HandlerFailure | undefined;

  constructor(
    readonly connection: RealtimeConnection,
    readonly message: ClientEnvelope,
  ) {}
}
