/** A send the service refused; `code` is MESSAGE_TOO_LARGE or INVALID_MESSAGE_FORMAT. */
export class RealtimeSendError extends Error {
  constructor(
    readonly code: 'MESSAGE_TOO_LARGE' | 'INVALID_MESSAGE_FORMAT',
    message: string,
  ) {
    super(message);
    this.name = 'RealtimeSendError';
  }
}
