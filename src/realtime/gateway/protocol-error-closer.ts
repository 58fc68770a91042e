import type { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { CloseCode, CloseReason } from '../../protocol/index.js';

/** The codes `ws` itself would close with for these errors, now with a reason text. */
const REASONS: Record<string, [number, string]> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: [CloseCode.MESSAGE_TOO_BIG, CloseReason.MESSAGE_TOO_BIG],
  // A 64-bit length past 2^53 - 1: a lying header, refused before any byte of it is read.
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: [CloseCode.MESSAGE_TOO_BIG, CloseReason.MESSAGE_TOO_BIG],
  WS_ERR_INVALID_UTF8: [CloseCode.INVALID_PAYLOAD, 'Invalid payload'],
  // More fragments in one message than ws keeps (maxFragments, 16,384): abuse, as in section 2.
  WS_ERR_TOO_MANY_BUFFERED_PARTS: [CloseCode.POLICY_VIOLATION, CloseReason.POLICY_VIOLATION],
};
const PROTOCOL_ERROR: [number, string] = [CloseCode.PROTOCOL_ERROR, 'Protocol error'];

type Receiver = EventEmitter & Record<symbol, unknown>;
let socketKey: symbol | undefined;

/**
 * `ws` closes on a bad frame (oversize, invalid UTF-8, protocol error) without a reason text;
 * PROTOCOL.md promises one. This listener runs first and closes with the reason, after which the
 * library's own close is a no-op.
 */
function closeWithReason(this: Receiver, error: Error & { code?: string }): void {
  const socket = socketKey ? (this[socketKey] as WebSocket | undefined) : undefined;
  if (!socket) return;
  const [code, reason] = REASONS[error.code ?? ''] ?? PROTOCOL_ERROR;
  try {
    socket.close(code, reason);
  } catch {
    // Already closing: the library's own close path takes over.
  }
}

/** Installs {@link closeWithReason} on a socket's frame receiver (a `ws` internal, pinned by tests). */
export function giveProtocolErrorsAReason(socket: WebSocket): void {
  const receiver = (socket as unknown as { _receiver?: Receiver })._receiver;
  if (!receiver) return;
  socketKey ??= Object.getOwnPropertySymbols(receiver).find((key) => receiver[key] === socket);
  receiver.prependListener('error', closeWithReason);
}
