import { WsException } from '@nestjs/websockets';

/** How a connection must end because of a failed message, when it must. */
export interface CloseInstruction {
  code: number;
  reason: string;
}

/**
 * An error a handler or guard throws to answer the client with an `error` message carrying
 * `code` (PROTOCOL.md section 6), or to end the connection when `close` is set.
 */
export class RealtimeException extends WsException {
  constructor(
    readonly code: string,
    message: string,
    readonly close?: CloseInstruction,
  ) {
    super({ code, message });
    this.name = 'RealtimeException';
  }
}
