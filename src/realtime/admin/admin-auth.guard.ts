import {
  type CanActivate,
  type ExecutionContext,
  ForbiddenException,
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  type OnModuleDestroy,
  UnauthorizedException,
} from '@nestjs/common';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import type { IncomingMessage } from 'node:http';
import { TokenVerifier } from '../auth/token-verifier.js';
import { HitLog, KeyedHitLogs } from '../gateway/hit-log.js';
import { REALTIME_THROTTLER_STORAGE } from '../gateway/message-rate-limiter.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';

const ADMIN_WINDOW_MS = 60_000;

/** Admin API access: a valid bearer JWT with an admin claim (401 / 403), rate-limited (429). */
@Injectable()
export class AdminAuthGuard implements CanActivate, OnModuleDestroy {
  /**
   * Per admin, when the storage is the module's in-memory default: the same sliding window in
   * O(1), where ThrottlerStorageService filters every live hit on every request.
   */
  private readonly local: KeyedHitLogs<{ requests: HitLog }> | undefined;

  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    @Inject(REALTIME_THROTTLER_STORAGE) private readonly storage: ThrottlerStorage,
    private readonly verifier: TokenVerifier,
  ) {
    const inMemoryDefault =
      options.throttlerStorage === undefined && storage instanceof ThrottlerStorageService;
    this.local = inMemoryDefault ? new KeyedHitLogs(() => ({ requests: new HitLog() })) : undefined;
  }

  onModuleDestroy(): void {
    this.local?.stop();
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<IncomingMessage>();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (!match?.[1]) throw new UnauthorizedException('Send Authorization: Bearer <admin JWT>');
    const result = this.verifier.verify(match[1]);
    if (!result.ok) {
      throw new UnauthorizedException(result.expired ? 'Token expired' : 'Invalid token');
    }
    if (!result.principal.isAdmin) throw new ForbiddenException('Admin role required');
    if (
      this.local
        ? this.limitedLocally(result.principal.userId)
        : await this.limited(result.principal.userId)
    ) {
      throw new HttpException('Too many admin requests; retry later', HttpStatus.TOO_MANY_REQUESTS);
    }
    return true;
  }

  private async limited(adminId: string): Promise<boolean> {
    const record = await this.storage.increment(
      `realtime:admin:${adminId}`,
      ADMIN_WINDOW_MS,
      this.options.adminRateLimit,
      0,
      'realtime-admin',
    );
    return record.isBlocked;
  }

  /** What {@link limited} decides with ThrottlerStorageService (a hit counts while under the limit). */
  private limitedLocally(adminId: string): boolean {
    const now = Date.now();
    const { requests } = this.local!.get(adminId);
    if (requests.live(now) >= this.options.adminRateLimit) return true;
    requests.add(now + ADMIN_WINDOW_MS);
    return false;
  }
}
