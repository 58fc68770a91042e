export { CloseCode, CloseReason, closeProblem, MAX_CLOSE_REASON_BYTES } from './close-codes.js';
export { ErrorCode, type ErrorData } from './error-codes.js';
export {
  ClientMessageType,
  ServerMessageType,
  DEFAULT_SUBSCRIBABLE_EVENTS,
  MAX_EVENTS_PER_REQUEST,
} from './message-types.js';
export {
  type ClientEnvelope,
  type ServerEnvelope,
  type JsonObject,
  type ParseResult,
  MAX_JSON_DEPTH,
  MAX_ID_LENGTH,
  MAX_TYPE_LENGTH,
  exceedsJsonDepth,
  isJsonObject,
  jsonObjectProblem,
  parseClientMessage,
  encodeServerMessage,
} from './envelope.js';
export type * from './payloads.js';
export {
  type StreamPosition,
  ALL_STREAM,
  MAX_RESUME_POSITIONS,
  compareOffsets,
  eventStream,
  isOffset,
  roomStream,
  userStream,
} from './stream-position.js';
