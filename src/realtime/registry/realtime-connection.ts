import type { WebSocket } from 'ws';
import type { RealtimePrincipal } from '../auth/realtime-principal.js';

/** Where a connection's remote address is read: its TCP socket (`request.socket`). */
export interface PeerSocket {
  readonly remoteAddress?: string | undefined;
}

/** The socket's remote address; 'unknown' once it closed without having been read. */
export function peerAddress(peer: PeerSocket): string {
  return peer.remoteAddress ?? 'unknown';
}

/** A handler bound to one connection, as the Nest gateway machinery hands it over. */
export type BoundMessageHandler = (data: unknown, context: unknown) => unknown;

const IDLE: Promise<void> = Promise.resolve();
const NONE: ReadonlySet<string> = new Set<string>();

/** One authenticated WebSocket connection and what the module knows of it. */
export class RealtimeConnection {
  // Made on first use: a connection that never subscribes or joins a room carries no empty Sets.
  private subscribed: Set<string> | undefined = undefined;
  private joined: Set<string> | undefined = undefined;
  /** When a frame last came, and a heartbeat (monotonicNow() ms, as connectedAt). */
  lastActivity: number;
  lastHeartbeat: number;
  /** When the server's next WebSocket ping is due (monotonicNow() ms); 0 until the supervisor sees it. */
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
  /**
   * True from admission until `connection.established` is written: frames sent meanwhile (by a
   * host's connect hooks) are held in `held`, so that it stays the first message (PROTOCOL.md).
   */
  awaitingEstablished = false;
  /** Frames held while awaiting `connection.established`, in order; made on first use. */
  held: { frames: Buffer[]; bytes: number } | undefined;
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
  /** The array ws's receiver collects this connection's frames in (see reuseFragments). */
  fragments: unknown[] | undefined = undefined;

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    readonly principal: RealtimePrincipal,
    private readonly peer: PeerSocket,
    readonly connectedAt: number,
  ) {
    this.lastActivity = connectedAt;
    this.lastHeartbeat = connectedAt;
  }

  get userId(): string {
    return this.principal.userId;
  }

  /**
   * The peer's IP address, read when first asked for: a syscall (getpeername) that a connect
   * needs only for per-address limits. Node keeps it once read; never read before the socket
   * closed, it is 'unknown'.
   */
  get remoteAddress(): string {
    return peerAddress(this.peer);
  }

  /** The events it is subscribed to; changed through ConnectionRegistry, which indexes them. */
  get subscriptions(): ReadonlySet<string> {
    return this.subscribed ?? NONE;
  }

  /** The rooms it is in; changed through ConnectionRegistry, which indexes them. */
  get rooms(): ReadonlySet<string> {
    return this.joined ?? NONE;
  }

  /** For ConnectionRegistry only. */
  addSubscription(event: string): void {
    (this.subscribed ??= new Set()).add(event);
  }

  /** For ConnectionRegistry only: false when not subscribed. */
  deleteSubscription(event: string): boolean {
    return this.subscribed?.delete(event) ?? false;
  }

  /** For ConnectionRegistry only. */
  addRoom(room: string): void {
    (this.joined ??= new Set()).add(room);
  }

  /** For ConnectionRegistry only: false when not in the room. */
  deleteRoom(room: string): boolean {
    return this.joined?.delete(room) ?? false;
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
