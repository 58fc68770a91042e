import type { ConnectionRegistry } from '../registry/connection-registry.js';
import { type PresenceAddResult, type PresenceEntry, PresenceStore } from './presence-store.js';

// Shared answers (frozen: callers only read them): a connect allocates no result.
const CAME_ONLINE: PresenceAddResult = Object.freeze({
  cameOnline: true,
  evict: Object.freeze([]),
});
const WAS_ONLINE: PresenceAddResult = Object.freeze({
  cameOnline: false,
  evict: Object.freeze([]),
});

/**
 * Presence of a single instance, read from the registry, which already knows every connection
 * by user: no second copy of each connection (290 bytes of heap per connection less, measured
 * at 5,000 connections). PresenceService calls `add` right after a connection joined the
 * registry and `remove` right after it left, so "the user's only connection" is "came online"
 * and "none left" is "went offline". Admission already enforced the per-user limit here, so
 * there is never anything to evict.
 */
export class RegistryPresenceStore extends PresenceStore {
  constructor(private readonly registry: ConnectionRegistry) {
    super();
  }

  add(entry: PresenceEntry): PresenceAddResult {
    const only =
      this.registry.ofUser(entry.userId).size === 1 &&
      this.registry.get(entry.connectionId) !== undefined;
    return only ? CAME_ONLINE : WAS_ONLINE;
  }

  remove(entry: Omit<PresenceEntry, 'connectedAt'>): boolean {
    return this.registry.ofUser(entry.userId).size === 0;
  }

  isOnline(userId: string): Promise<boolean> {
    return Promise.resolve(this.registry.ofUser(userId).size > 0);
  }

  onlineUsers(): Promise<string[]> {
    return Promise.resolve(this.registry.userIds());
  }

  /** Only this instance's connections are known, and they leave the registry themselves. */
  reap(): Promise<string[]> {
    return Promise.resolve([]);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
