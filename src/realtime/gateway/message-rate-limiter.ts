import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';

export const REALTIME_THROTTLER_STORAGE = Symbol('REALTIME_THROTTLER_STORAGE');

export type RateDecision =
  { allowed: true } | { allowed: false; abusive: boolean; resetTime: number };

const ALLOWED: RateDecision = { allowed: true };

type StorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** How often users whose hits all expired are forgotten (as ThrottlerStorageService sweeps). */
const SWEEP_INTERVAL_MS = 60_000;

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
  private readonly local: Map<string, UserHits> | undefined;
  private sweep: NodeJS.Timeout | undefined;

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    @Inject(REALTIME_THROTTLER_STORAGE) private readonly storage: ThrottlerStorage,
  ) {
    const inMemoryDefault =
      options.throttlerStorage === undefined && storage instanceof ThrottlerStorageService;
    this.local = inMemoryDefault ? new Map() : undefined;
  }

  onModuleDestroy(): void {
    clearInterval(this.sweep);
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
  private hitLocal(local: Map<string, UserHits>, userId: string): RateDecision {
    const { rateLimitMessages: limit, rateLimitWindowMs: ttl } = this.options;
    const now = Date.now();
    let hits = local.get(userId);
    if (!hits) {
      hits = { all: new HitLog(), accepted: new HitLog() };
      local.set(userId, hits);
      this.sweep ??= setInterval(() => this.forgetIdle(local), SWEEP_INTERVAL_MS).unref();
    }
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

  private forgetIdle(local: Map<string, UserHits>): void {
    const now = Date.now();
    for (const [userId, hits] of local) {
      if (hits.all.live(now) === 0 && hits.accepted.live(now) === 0) local.delete(userId);
    }
  }
}

interface UserHits {
  /** Every message, for the abuse bound. */
  readonly all: HitLog;
  /** Accepted messages only, for the limit and resetTime. */
  readonly accepted: HitLog;
}

/**
 * A sliding-window log: the expiry times of the hits in the window, oldest first (the window is
 * the same for every hit, so they are added in order). Expired hits are dropped from the front.
 */
class HitLog {
  private expiries: number[] = [];
  private head = 0;

  /** Drops the hits expired at `now` (as the storage does: kept while expiry > now). */
  live(now: number): number {
    const { expiries } = this;
    let head = this.head;
    while (head < expiries.length && expiries[head]! <= now) head++;
    if (head === expiries.length) {
      this.expiries = [];
      head = 0;
    } else if (head > 64 && head * 2 > expiries.length) {
      this.expiries = expiries.slice(head);
      head = 0;
    }
    this.head = head;
    return this.expiries.length - head;
  }

  add(expiry: number): void {
    this.expiries.push(expiry);
  }

  /** Expiry of the oldest live hit; call after {@link live}, with at least one hit. */
  oldest(): number {
    return this.expiries[this.head]!;
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
