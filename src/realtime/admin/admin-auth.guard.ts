import {
  type CanActivate,
  type ExecutionContext,
  ForbiddenException,
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { IncomingMessage } from 'node:http';
import { TokenVerifier } from '../auth/token-verifier.js';
import { REALTIME_THROTTLER_STORAGE } from '../gateway/message-rate-limiter.js';
import { REALTIME_OPTIONS, type ResolvedRealtimeOptions } from '../realtime-options.js';

const ADMIN_WINDOW_MS = 60_000;

/** Admin API access: a valid bearer JWT with an admin claim (401 / 403), rate-limited (429). */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  constructor(
    @Inject(REALTIME_OPTIONS) private readonly options: ResolvedRealtimeOptions,
    @Inject(REALTIME_THROTTLER_STORAGE) private readonly storage: ThrottlerStorage,
    private readonly verifier: TokenVerifier,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<IncomingMessage>();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (!match?.[1]) throw new UnauthorizedException('Send Authorization: Bearer <admin JWT>');
    const result = this.verifier.verify(match[1]);
    if (!result.ok) {
      throw new UnauthorizedException(result.expired ? 'Token expired' : 'Invalid token');
    }
    if (!result.principal.isAdmin) throw new ForbiddenException('Admin role required');
    const record = await this.storage.increment(
      `realtime:admin:${result.principal.userId}`,
      ADMIN_WINDOW_MS,
      this.options.adminRateLimit,
      0,
      'realtime-admin',
    );
    if (record.isBlocked) {
      throw new HttpException('Too many admin requests; retry later', HttpStatus.TOO_MANY_REQUESTS);
    }
    return true;
  }
}
