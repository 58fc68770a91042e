import { Inject, Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';

export const REALTIME_THROTTLER_STORAGE = Symbol('REALTIME_THROTTLER_STORAGE');

export type RateDecision =
  { allowed: true } | { allowed: false; abusive: boolean; resetTime: number };

const ALLOWED: RateDecision = { allowed: true };

type StorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * The per-user inbound message limit, kept in a @nestjs/throttler storage so that it can be shared
 * between instances. Every message counts toward abuse (more than twice the limit: 1008); only
 * accepted ones hold a slot, so that `resetTime` is when a slot really frees.
 */
@Injectable()
export class MessageRateLimiter {
  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    @Inject(REALTIME_THROTTLER_STORAGE) private readonly storage: ThrottlerStorage,
  ) {}

  async hit(userId: string): Promise<RateDecision> {
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
