import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';

/** Signs development tokens for the demo page. Never mounted when NODE_ENV=production. */
@Injectable()
export class DemoTokens {
  private readonly jwt: JwtService;

  constructor(secret: string) {
    this.jwt = new JwtService({ secret });
  }

  sign(userId: string, admin: boolean, ttlSeconds: number): string {
    return this.jwt.sign(
      { sub: userId, ...(admin ? { role: 'admin' } : {}) },
      { algorithm: 'HS256', expiresIn: ttlSeconds },
    );
  }
}
