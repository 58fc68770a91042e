import {
  type CanActivate,
  type ExecutionContext,
  HttpException,
  HttpStatus,
  Injectable,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeyedWindowCounter } from '../realtime/gateway/keyed-window-counter.js';
import type { AuthenticatedRequest } from './demo-user.guard.js';

/**
 * Budgets of the demo's REST routes. Anyone can get a token here, so without them one script
 * could mint tokens in bulk and broadcast to every connected page hundreds of times a second.
 */
export const DEMO_RATE_LIMITS = {
  /** Per remote address. */
  token: { limit: 30, windowMs: 60_000, by: 'address' },
  /** Per user: each one is a broadcast to every connection. */
  notify: { limit: 10, windowMs: 60_000, by: 'user' },
  /** Per user, for uploads and mark-read. */
  user: { limit: 60, windowMs: 60_000, by: 'user' },
} as const;

export type DemoRateLimitName = keyof typeof DEMO_RATE_LIMITS;

const RATE_LIMIT_KEY = 'demo:rate-limit';

/** Counts the route's requests against the named budget (after DemoUserGuard for `by: user`). */
export const DemoRateLimit = (name: DemoRateLimitName) => SetMetadata(RATE_LIMIT_KEY, name);

/** 429 with Retry-After once a budget is spent; counters live per app, bounded in memory. */
@Injectable()
export class DemoRateLimitGuard implements CanActivate {
  private readonly counters = new Map<DemoRateLimitName, KeyedWindowCounter>();

  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const name = this.reflector.get<DemoRateLimitName | undefined>(
      RATE_LIMIT_KEY,
      context.getHandler(),
    );
    if (name === undefined) return true;
    const budget = DEMO_RATE_LIMITS[name];
    const http = context.switchToHttp();
    const request = http.getRequest<IncomingMessage & Partial<AuthenticatedRequest>>();
    const key =
      budget.by === 'user'
        ? `user:${request.principal?.userId ?? ''}`
        : `address:${request.socket.remoteAddress ?? ''}`;
    const retryAfter = this.counter(name).admit(key);
    if (retryAfter === 0) return true;
    http.getResponse<ServerResponse>().setHeader('retry-after', String(retryAfter));
    const per = `${budget.limit} per ${budget.windowMs / 1000} s`;
    throw new HttpException(
      `Too many requests: at most ${per}; retry in ${retryAfter} s`,
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }

  private counter(name: DemoRateLimitName): KeyedWindowCounter {
    let counter = this.counters.get(name);
    if (!counter) {
      const { limit, windowMs } = DEMO_RATE_LIMITS[name];
      counter = new KeyedWindowCounter(limit, windowMs);
      this.counters.set(name, counter);
    }
    return counter;
  }
}
