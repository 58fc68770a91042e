const EMPTY: ReadonlySet<never> = new Set<never>();

/** A multimap from key to a set of values that drops keys whose set became empty. */
export class SetIndex<K, V> {
  private readonly map = new Map<K, Set<V>>();

  add(key: K, value: V): void {
    let set = this.map.get(key);
    if (!set) {
      set = new Set();
      this.map.set(key, set);
    }
    set.add(value);
  }

  delete(key: K, value: V): void {
    const set = this.map.get(key);
    if (!set) return;
    set.delete(value);
    if (set.size === 0) this.map.delete(key);
  }

  get(key: K): ReadonlySet<V> {
    return this.map.get(key) ?? EMPTY;
  }

  sizeOf(key: K): number {
    return this.map.get(key)?.size ?? 0;
  }

  get keyCount(): number {
    return this.map.size;
  }

  keys(): IterableIterator<K> {
    return this.map.keys();
  }

  /**
   * Key to set size, for stats. Own properties whatever the key: assigning `result['__proto__']`
   * on a plain object would set its prototype instead, and a user named so would go uncounted.
   */
  counts(): Record<string, number> {
    const entries: [string, number][] = [];
    for (const [key, set] of this.map) entries.push([String(key), set.size]);
    return Object.fromEntries(entries);
  }
}
