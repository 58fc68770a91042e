import type { StreamPosition } from '../../protocol/index.js';

/**
 * The envelope JSON with its stream position added as the last fields. Done by text, once per
 * message and instance, so that the frame is still serialized only once per send.
 */
export function withPosition(frame: string, position: StreamPosition): string {
  return (
    `${frame.slice(0, -1)},"stream":${JSON.stringify(position.stream)},` +
    `"offset":${JSON.stringify(position.offset)},"epoch":${JSON.stringify(position.epoch)}}`
  );
}

/**
 * Most bytes {@link withPosition} adds for `stream`: offsets and epochs are short tokens. In
 * UTF-8 bytes, as the frame is sent: a stream name's length in characters undercounts (a CJK
 * character is 3 bytes).
 */
export function positionOverhead(stream: string): number {
  return Buffer.byteLength(JSON.stringify(stream)) + 128;
}
