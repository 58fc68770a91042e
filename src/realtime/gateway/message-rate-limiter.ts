import { Inject, Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';

export const REALTIME_THROTTLER_STORAGE = Symbol('REALTIME_THROTTLER_STORAGE');

export type RateDecision =
  { allowed: true } | { allowed: false; abusive: boolean; resetTime: number };

const ALLOWED: RateDecision = { allowed: true };

/**
 * The per-user inbound message limit, kept in a @nestjs/throttler storage so that it can be shared
 * between instances. Hits are counted up to twice the limit to tell abuse (1008) from a burst.
 */
@Injectable()
export class MessageRateLimiter {
  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    @Inject(REALTIME_THROTTLER_STORAGE) private readonly storage: ThrottlerStorage,
  ) {}

  async hit(userId: string): Promise<RateDecision> {
    const { rateLimitMessages: limit, rateLimitWindowMs: ttl } = this.options;
    const record = await this.storage.increment(
      `realtime:messages:${userId}`,
      ttl,
      2 * limit + 1,
      0,
      'realtime',
    );
    if (record.totalHits <= limit) return ALLOWED;
    return {
      allowed: false,
      abusive: record.totalHits > 2 * limit,
      resetTime: Math.ceil(Date.now() / 1000) + Math.max(0, record.timeToExpire),
    };
  }
}
