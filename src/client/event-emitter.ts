/** A listener as stored: the typed surface lives in the client's `on`/`once`/`off`. */
export type StoredListener = (...args: never[]) => void;

/**
 * A minimal emitter that works the same in browsers and Node (no `events` import). One throwing
 * listener must not stop the others nor break the client's own message handling, so errors are
 * reported through `onListenerError` instead of propagating.
 */
export class ListenerRegistry {
  private readonly listeners = new Map<string, Set<StoredListener>>();
  /** Wrappers made by `once`, keyed by the original, so that `off(original)` removes them. */
  private readonly onceWrappers = new Map<StoredListener, StoredListener>();

  constructor(private readonly onListenerError: (error: unknown) => void) {}

  on(type: string, listener: StoredListener): void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener);
  }

  once(type: string, listener: StoredListener): void {
    const wrapper = ((...args: never[]) => {
      this.off(type, listener);
      listener(...args);
    }) as StoredListener;
    this.onceWrappers.set(listener, wrapper);
    this.on(type, wrapper);
  }

  off(type: string, listener: StoredListener): void {
    const set = this.listeners.get(type);
    if (!set) return;
    const wrapper = this.onceWrappers.get(listener);
    if (wrapper && set.delete(wrapper)) this.onceWrappers.delete(listener);
    set.delete(listener);
    if (set.size === 0) this.listeners.delete(type);
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
}
