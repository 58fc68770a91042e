/** A listener as stored: the typed surface lives in the client's `on`/`once`/`off`. */
export type StoredListener = (...args: never[]) => void;

/**
 * A minimal emitter that works the same in browsers and Node (no `events` import). One throwing
 * listener must not stop the others nor break the client's own message handling, so errors are
 * reported through `onListenerError` instead of propagating.
 */
export class ListenerRegistry {
  private readonly listeners = new Map<string, Set<StoredListener>>();
  /**
   * Wrappers made by `once`, per type and then keyed by the original, so that `off(type,
   * original)` removes them: one listener may be registered `once` for several types.
   */
  private readonly onceWrappers = new Map<string, Map<StoredListener, StoredListener>>();

  constructor(private readonly onListenerError: (error: unknown) => void) {}

  on(type: string, listener: StoredListener): void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener);
  }

  /** Like `on`, registering the same listener `once` for a type twice keeps one. */
  once(type: string, listener: StoredListener): void {
    let wrappers = this.onceWrappers.get(type);
    if (!wrappers) {
      wrappers = new Map();
      this.onceWrappers.set(type, wrappers);
    }
    if (wrappers.has(listener)) return;
    const wrapper = ((...args: never[]) => {
      // Only the wrapper goes: the same listener may also be registered with `on`.
      this.removeOnce(type, listener);
      listener(...args);
    }) as StoredListener;
    wrappers.set(listener, wrapper);
    this.on(type, wrapper);
  }

  off(type: string, listener: StoredListener): void {
    this.removeOnce(type, listener);
    this.remove(type, listener);
  }

  has(type: string): boolean {
    return (this.listeners.get(type)?.size ?? 0) > 0;
  }

  emit(type: string, ...args: unknown[]): void {
    const set = this.listeners.get(type);
    if (!set) return;
    // A copy: listeners may add or remove listeners while being called.
    for (const listener of [...set]) {
      try {
        (listener as (...values: unknown[]) => void)(...args);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  clear(): void {
    this.listeners.clear();
    this.onceWrappers.clear();
  }

  private removeOnce(type: string, listener: StoredListener): void {
    const wrappers = this.onceWrappers.get(type);
    const wrapper = wrappers?.get(listener);
    if (!wrappers || !wrapper) return;
    wrappers.delete(listener);
    if (wrappers.size === 0) this.onceWrappers.delete(type);
    this.remove(type, wrapper);
  }

  private remove(type: string, listener: StoredListener): void {
    const set = this.listeners.get(type);
    if (!set) return;
    set.delete(listener);
    if (set.size === 0) this.listeners.delete(type);
  }
}
