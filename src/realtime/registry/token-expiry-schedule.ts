import { Injectable } from '@nestjs/common';
import type { RealtimeConnection } from './realtime-connection.js';

const BUCKET_MS = 250;

/**
 * Connections bucketed by when their token expires, so that finding the expired ones costs what
 * they cost, without a timer per connection.
 */
@Injectable()
export class TokenExpirySchedule {
  private readonly buckets = new Map<number, Set<RealtimeConnection>>();

  add(connection: RealtimeConnection): void {
    const { expiresAt } = connection.principal;
    if (expiresAt === undefined) return;
    const key = bucketOf(expiresAt);
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(key, bucket);
    }
    bucket.add(connection);
  }

  remove(connection: RealtimeConnection): void {
    const { expiresAt } = connection.principal;
    if (expiresAt === undefined) return;
    const key = bucketOf(expiresAt);
    const bucket = this.buckets.get(key);
    if (!bucket) return;
    bucket.delete(connection);
    if (bucket.size === 0) this.buckets.delete(key);
  }

  /** Removes and returns the connections whose token has expired by `now`. */
  takeExpired(now: number): RealtimeConnection[] {
    const due: RealtimeConnection[] = [];
    for (const [key, bucket] of this.buckets) {
      if (key * BUCKET_MS > now) continue;
      for (const connection of bucket) {
        if (connection.principal.expiresAt! <= now) {
          due.push(connection);
          bucket.delete(connection);
        }
      }
      if (bucket.size === 0) this.buckets.delete(key);
    }
    return due;
  }

  /** How often {@link takeExpired} should run to end connections promptly. */
  static readonly TICK_MS = BUCKET_MS;
}

function bucketOf(timestamp: number): number {
  return Math.floor(timestamp / BUCKET_MS);
}
