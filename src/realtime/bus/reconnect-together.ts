import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';

/**
 * The module's own connections to Redis (bus, presence, rate limits, history). Each waits out
 * its own jittered backoff after an outage, up to 5 s, so one may be back seconds before another;
 * meanwhile the instance holds inbound messages for gap recovery, counts rate limits locally,
 * and fails presence writes. Once Redis answers one of them, the others that are between
 * attempts try at once. A host's own connections are only watched: their return tells, but they
 * keep their own schedule.
 */
@Injectable()
export class ReconnectTogether implements OnApplicationShutdown {
  private readonly connections = new Set<Redis>();
  /** The host's connections and what listens to them: taken off at shutdown, they outlive it. */
  private readonly watched = new Map<Redis, () => void>();

  add(redis: Redis): void {
    this.connections.add(redis);
    redis.on('ready', () => this.reconnectOthers(redis));
    redis.once('end', () => {
      this.connections.delete(redis);
      // connect() during a backoff leaves ioredis's own timer pending (it then finds the
      // connection up and does nothing). Should the connection be closed before that timer
      // fires, its connect() would open it again: a closed connection stays closed.
      redis.on('connecting', () => redis.disconnect());
    });
  }

  /** A connection the host made: its return brings the module's back, it is not hurried. */
  watch(redis: Redis): void {
    const listener = () => this.reconnectOthers(redis);
    this.watched.set(redis, listener);
    redis.on('ready', listener);
  }

  onApplicationShutdown(): void {
    for (const [redis, listener] of this.watched) redis.off('ready', listener);
    this.watched.clear();
  }

  private reconnectOthers(ready: Redis): void {
    for (const other of this.connections) {
      if (other !== ready && other.status === 'reconnecting') {
        other.connect().catch(() => undefined);
      }
    }
  }
}
