import { Injectable } from '@nestjs/common';
import type { RealtimeConnection } from './realtime-connection.js';

const BUCKET_MS = 250;

/**
 * Connections bucketed by when their token expires, so that finding the expired ones costs what
 * they cost, without a timer per connection: each call visits only the buckets that came due
 * since the last one (or every bucket, when there are fewer of those).
 */
@Injectable()
export class TokenExpirySchedule {
  private readonly buckets = new Map<number, Set<RealtimeConnection>>();
  private connections = 0;
  /**
   * No bucket below this key holds a connection. Scanning every bucket on every tick cost 1.5 ms
   * each 250 ms with 86,400 buckets (a day of one-second `exp` values) even when none was due.
   */
  private cursor = Number.NEGATIVE_INFINITY;

  add(connection: RealtimeConnection): void {
    const key = keyOf(connection);
    if (key === undefined) return;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(key, bucket);
    }
    if (bucket.has(connection)) return;
    bucket.add(connection);
    this.connections++;
    // Already due, or the wall clock went back since the last call: still found next time.
    if (key < this.cursor) this.cursor = key;
  }

  remove(connection: RealtimeConnection): void {
    const key = keyOf(connection);
    if (key === undefined) return;
    const bucket = this.buckets.get(key);
    if (!bucket?.delete(connection)) return;
    this.connections--;
    if (bucket.size === 0) this.buckets.delete(key);
  }

  /** Removes and returns the connections whose token has expired by `now` (epoch ms). */
  takeExpired(now: number): RealtimeConnection[] {
    const due: RealtimeConnection[] = [];
    const last = bucketOf(now);
    // Nothing due before the cursor's bucket: a wall clock that went back finds nothing early.
    if (last < this.cursor) return due;
    if (last - this.cursor < this.buckets.size) {
      for (let key = this.cursor; key <= last; key++) this.takeFrom(key, now, due);
    } else {
      for (const key of this.buckets.keys()) if (key <= last) this.takeFrom(key, now, due);
    }
    // Buckets before `last` were wholly due; `last` may keep tokens that expire later in it.
    this.cursor = last;
    return due;
  }

  /** Connections scheduled (tokens with an `exp` not yet taken or removed). */
  get size(): number {
    return this.connections;
  }

  /** Buckets held; with {@link size}, what a test reads to see that nothing is kept. */
  get bucketCount(): number {
    return this.buckets.size;
  }

  /** How often {@link takeExpired} should run to end connections promptly. */
  static readonly TICK_MS = BUCKET_MS;

  private takeFrom(key: number, now: number, due: RealtimeConnection[]): void {
    const bucket = this.buckets.get(key);
    if (!bucket) return;
    for (const connection of bucket) {
      if (connection.principal.expiresAt! <= now) {
        due.push(connection);
        bucket.delete(connection);
        this.connections--;
      }
    }
    if (bucket.size === 0) this.buckets.delete(key);
  }
}

/**
 * The bucket of a connection's expiry, or undefined when it never expires: no `exp`, or one so
 * large that it parsed to Infinity (`1e309` in the token's JSON).
 */
function keyOf(connection: RealtimeConnection): number | undefined {
  const { expiresAt } = connection.principal;
  if (expiresAt === undefined || expiresAt === Number.POSITIVE_INFINITY) return undefined;
  return bucketOf(expiresAt);
}

function bucketOf(timestamp: number): number {
  return Math.floor(timestamp / BUCKET_MS);
}
