import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { TokenVerifier } from '../realtime/auth/token-verifier.js';
import type { RealtimePrincipal } from '../realtime/index.js';

export type AuthenticatedRequest = IncomingMessage & { principal: RealtimePrincipal };

/** REST routes of the demo accept the same bearer JWT as the WebSocket. */
@Injectable()
export class DemoUserGuard implements CanActivate {
  constructor(private readonly verifier: TokenVerifier) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const token = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    const result = token ? this.verifier.verify(token) : undefined;
    if (!result?.ok) throw new UnauthorizedException('Send Authorization: Bearer <token>');
    request.principal = result.principal;
    return true;
  }
}
