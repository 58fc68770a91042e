/**
 * A send that was refused and not sent: MESSAGE_TOO_LARGE, INVALID_MESSAGE_FORMAT, or
 * BUS_UNAVAILABLE (the bus cannot reach the other instances and its queue is full). Reads of the
 * cluster (a user id outside the limits, presence while Redis is unreachable) and a join of a
 * connection whose owner cannot be asked reject with it too.
 */
export class RealtimeSendError extends Error {
  constructor(
    readonly code: 'MESSAGE_TOO_LARGE' | 'INVALID_MESSAGE_FORMAT' | 'BUS_UNAVAILABLE',
    message: string,
  ) {
    super(message);
    this.name = 'RealtimeSendError';
  }
}
