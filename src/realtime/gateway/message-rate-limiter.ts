import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';
import { HitLog, KeyedHitLogs } from './hit-log.js';

/** A user's hits: every message (for the abuse bound) and accepted ones (limit, resetTime). */
type UserHits = { all: HitLog; accepted: HitLog };

export const REALTIME_THROTTLER_STORAGE = Symbol('REALTIME_THROTTLER_STORAGE');

export type RateDecision =
  { allowed: true } | { allowed: false; abusive: boolean; resetTime: number };

const ALLOWED: RateDecision = { allowed: true };

type StorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * The per-user inbound message limit, kept in a @nestjs/throttler storage so that it can be shared
 * between instances. Every message counts toward abuse (more than twice the limit: 1008); only
 * accepted ones hold a slot, so that `resetTime` is when a slot really frees.
 *
 * With the module's own in-memory storage nothing is shared, so the same sliding window is kept
 * here instead ({@link HitLog}): O(1) per message and synchronous, where ThrottlerStorageService
 * filters every live hit twice per message.
 */
@Injectable()
export class MessageRateLimiter implements OnModuleDestroy {
  /** Per user, when the storage is the module's in-memory default; else undefined. */
  private readonly local: KeyedHitLogs<UserHits> | undefined;

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    @Inject(REALTIME_THROTTLER_STORAGE) private readonly storage: ThrottlerStorage,
  ) {
    const inMemoryDefault =
      options.throttlerStorage === undefined && storage instanceof ThrottlerStorageService;
    this.local = inMemoryDefault
      ? new KeyedHitLogs(() => ({ all: new HitLog(), accepted: new HitLog() }))
      : undefined;
  }

  onModuleDestroy(): void {
    this.local?.stop();
  }

  /** The decision for one more message of the user; synchronous with the in-memory storage. */
  hit(userId: string): RateDecision | Promise<RateDecision> {
    return this.local ? this.hitLocal(this.local, userId) : this.hitStorage(userId);
  }

  private async hitStorage(userId: string): Promise<RateDecision> {
    const { rateLimitMessages: limit, rateLimitWindowMs: ttl } = this.options;
    const all = await this.storage.increment(
      `realtime:all:${userId}`,
      ttl,
      2 * limit + 1,
      0,
      'realtime',
    );
    if (all.totalHits > 2 * limit) return refused(all, true);
    // Refused messages must not hold a slot: a client that waits until resetTime is let in.
    const accepted = await this.storage.increment(
      `realtime:messages:${userId}`,
      ttl,
      limit,
      0,
      'realtime',
    );
    return accepted.totalHits <= limit ? ALLOWED : refused(accepted, false);
  }

  /** What {@link hitStorage} decides with ThrottlerStorageService (blockDuration 0). */
  private hitLocal(local: KeyedHitLogs<UserHits>, userId: string): RateDecision {
    const { rateLimitMessages: limit, rateLimitWindowMs: ttl } = this.options;
    const now = Date.now();
    const hits = local.get(userId);
    // The storage records a hit only while under its limit (2 * limit + 1 here), and answers
    // totalHits = live hits + 1 either way.
    const all = hits.all.live(now);
    if (all < 2 * limit + 1) hits.all.add(now + ttl);
    if (all + 1 > 2 * limit) return refusedUntil(hits.all.oldest(), now, true);
    const accepted = hits.accepted.live(now);
    if (accepted >= limit) return refusedUntil(hits.accepted.oldest(), now, false);
    hits.accepted.add(now + ttl);
    return ALLOWED;
  }
}

/** Seconds until a slot frees: when the oldest counted hit expires. */
function refused(record: StorageRecord, abusive: boolean): RateDecision {
  const seconds = record.isBlocked ? record.timeToBlockExpire : record.timeToExpire;
  return {
    allowed: false,
    abusive,
    resetTime: Math.ceil(Date.now() / 1000) + Math.max(0, seconds),
  };
}

/** As {@link refused}, from the expiry of the oldest counted hit. */
function refusedUntil(oldestExpiry: number, now: number, abusive: boolean): RateDecision {
  const seconds = Math.ceil((oldestExpiry - now) / 1000);
  return { allowed: false, abusive, resetTime: Math.ceil(now / 1000) + Math.max(0, seconds) };
}
