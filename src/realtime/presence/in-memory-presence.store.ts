import {
  byAge,
  type PresenceAddResult,
  type PresenceEntry,
  PresenceStore,
} from './presence-store.js';

/** Presence of a single instance. */
export class InMemoryPresenceStore extends PresenceStore {
  private readonly byUser = new Map<string, Map<string, PresenceEntry>>();

  add(entry: PresenceEntry, perUserLimit: number): Promise<PresenceAddResult> {
    let entries = this.byUser.get(entry.userId);
    const cameOnline = !entries;
    if (!entries) {
      entries = new Map();
      this.byUser.set(entry.userId, entries);
    }
    entries.set(entry.connectionId, entry);
    const excess = entries.size - perUserLimit;
    const evict = excess > 0 ? [...entries.values()].sort(byAge).slice(0, excess) : [];
    return Promise.resolve({ cameOnline, evict });
  }

  remove(entry: Omit<PresenceEntry, 'connectedAt'>): Promise<boolean> {
    const entries = this.byUser.get(entry.userId);
    if (!entries?.delete(entry.connectionId)) return Promise.resolve(false);
    if (entries.size > 0) return Promise.resolve(false);
    this.byUser.delete(entry.userId);
    return Promise.resolve(true);
  }

  isOnline(userId: string): Promise<boolean> {
    return Promise.resolve(this.byUser.has(userId));
  }

  onlineUsers(): Promise<string[]> {
    return Promise.resolve([...this.byUser.keys()]);
  }

  reap(instanceIds: readonly string[]): Promise<string[]> {
    const gone = new Set(instanceIds);
    const offline: string[] = [];
    for (const [userId, entries] of this.byUser) {
      for (const [id, entry] of entries) if (gone.has(entry.instanceId)) entries.delete(id);
      if (entries.size === 0) {
        this.byUser.delete(userId);
        offline.push(userId);
      }
    }
    return Promise.resolve(offline);
  }

  close(): Promise<void> {
    this.byUser.clear();
    return Promise.resolve();
  }
}
