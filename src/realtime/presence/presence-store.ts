/** One connection as the cluster knows it. */
export interface PresenceEntry {
  connectionId: string;
  userId: string;
  /** ms since epoch, sub-millisecond; orders the per-user limit (ties by connection id). */
  connectedAt: number;
  instanceId: string;
}

export interface PresenceAddResult {
  /** This was the user's first connection anywhere. */
  cameOnline: boolean;
  /** Connections of the user beyond the limit, oldest first: to be closed with 4008. */
  evict: readonly PresenceEntry[];
}

/**
 * Who is connected, across every instance: the data behind presence, `user.status_changed`
 * and the cluster-wide per-user limit. Each transition (online, offline) is reported to exactly
 * one caller.
 */
export abstract class PresenceStore {
  // `add` and `remove` run on every connect and close: a store of this process answers them at
  // once, without a promise (measured: the promises were a third of a connect's garbage).
  abstract add(
    entry: PresenceEntry,
    perUserLimit: number,
  ): PresenceAddResult | Promise<PresenceAddResult>;
  /** Forgets a connection; true when it was the user's last one anywhere. */
  abstract remove(entry: Omit<PresenceEntry, 'connectedAt'>): boolean | Promise<boolean>;
  abstract isOnline(userId: string): Promise<boolean>;
  abstract onlineUsers(): Promise<string[]>;
  /** Forgets every connection of these instances; returns the users now offline. */
  abstract reap(instanceIds: readonly string[]): Promise<string[]>;
  /**
   * Forgets the connections of `instanceId` that `isOpen` denies (closed while the store could not
   * hear of it), one at a time, leaving the others in place; returns the users now offline.
   */
  abstract forgetClosed(
    instanceId: string,
    isOpen: (connectionId: string) => boolean,
  ): Promise<string[]>;
  /**
   * As {@link reap}, for instances the bus reported gone. A store that can see their leases skips
   * any that renewed since: back already, it rewrites its part itself, maybe before this lands.
   */
  reapGone(instanceIds: readonly string[]): Promise<string[]> {
    return this.reap(instanceIds);
  }
  /**
   * Calls `listener` each time the store's own connection is ready (again): writes failed while
   * it was not, and what it held may be gone (a restarted Redis). Never, for a store of this
   * process.
   */
  abstract onReady(listener: () => void): void;
  /**
   * Whether `error`, from a write, was the store refusing it over a working connection (an error
   * reply), rather than a write lost to an outage whose end {@link onReady} reports. Never, for a
   * store of this process.
   */
  refused(error: unknown): boolean {
    void error;
    return false;
  }
  abstract close(): Promise<void>;
}
