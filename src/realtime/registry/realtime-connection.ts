import type { WebSocket } from 'ws';
import type { RealtimePrincipal } from '../auth/realtime-principal.js';

/** A handler bound to one connection, as the Nest gateway machinery hands it over. */
export type BoundMessageHandler = (data: unknown, context: unknown) => unknown;

const IDLE: Promise<void> = Promise.resolve();

/** One authenticated WebSocket connection and what the module knows of it. */
export class RealtimeConnection {
  readonly subscriptions = new Set<string>();
  readonly rooms = new Set<string>();
  lastActivity: number;
  lastHeartbeat: number;
  /** When the server's next WebSocket ping is due (Date.now() ms); 0 until the supervisor sees it. */
  nextPingAt = 0;
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  errorCount = 0;
  /** True while the SocketWriter holds this socket's stream corked (until the end of the turn). */
  corked = false;
  /** Set once a close has started: nothing more is written to the socket. */
  closing = false;
  /** Messages received and not yet fully handled; they are handled one at a time, in order. */
  pending = 0;
  /** Completion of the last message in handling. */
  inbox: Promise<void> = IDLE;
  /** Handlers by message type, filled in by the WebSocket adapter. */
  handlers: Map<string, BoundMessageHandler> | undefined;
  /** True while `resume` is accepted (history on, within the resume window after connecting). */
  resumeOpen = false;
  /**
   * While `resumeOpen`: per stream, the offset of the first message delivered live on this
   * connection. A replay stops there, so that nothing arrives twice. Made on first use.
   */
  firstLiveOffsets: Map<string, string> | undefined;
  /**
   * Per stream, the last offset a resume replayed to this connection: an instance filling a gap
   * in its own subscription afterwards must not deliver those again. Made by a replay only.
   */
  replayedUpTo: Map<string, string> | undefined;

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    readonly principal: RealtimePrincipal,
    readonly remoteAddress: string,
    readonly connectedAt: number,
  ) {
    this.lastActivity = connectedAt;
    this.lastHeartbeat = connectedAt;
  }

  get userId(): string {
    return this.principal.userId;
  }
}

const CONNECTION = Symbol('realtimeConnection');
type TaggedSocket = WebSocket & { [CONNECTION]?: RealtimeConnection };

/** Links a socket to its connection so that shared listeners need no closure per socket. */
export function attachConnection(socket: WebSocket, connection: RealtimeConnection): void {
  (socket as TaggedSocket)[CONNECTION] = connection;
}

export function connectionOf(socket: WebSocket): RealtimeConnection | undefined {
  return (socket as TaggedSocket)[CONNECTION];
}
