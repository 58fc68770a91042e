/**
 * - `connecting`: the first connection is being made (not yet `connection.established`);
 * - `open`: established (and, after a reconnect, every subscription restored);
 * - `reconnecting`: the connection was lost; waiting for the backoff or connecting again;
 * - `closed`: not connected and not trying to be (initial state, after `close()`, or after a close
 *   code that must not be retried).
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateChange {
  newState: ConnectionState;
  oldState: ConnectionState;
}

/** Transitions that can happen; anything else is a bug in the client, so it throws. */
const ALLOWED: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  closed: ['connecting'],
  connecting: ['open', 'reconnecting', 'closed'],
  open: ['reconnecting', 'closed'],
  reconnecting: ['open', 'closed'],
};

export function canTransition(from: ConnectionState, to: ConnectionState): boolean {
  return ALLOWED[from].includes(to);
}

/**
 * Holds the state; `set()` is the only way to change it, so every change is reported exactly
 * once through `onChange`. Setting the current state again is a no-op, not a change.
 */
export class ConnectionStateMachine {
  private current: ConnectionState = 'closed';

  constructor(private readonly onChange: (change: StateChange) => void) {}

  get state(): ConnectionState {
    return this.current;
  }

  set(newState: ConnectionState): void {
    const oldState = this.current;
    if (newState === oldState) return;
    if (!canTransition(oldState, newState)) {
      throw new Error(`Invalid connection state transition ${oldState} -> ${newState}`);
    }
    this.current = newState;
    this.onChange({ newState, oldState });
  }
}
