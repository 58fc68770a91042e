import { Body, Controller, HttpCode, Post, UseGuards, UsePipes } from '@nestjs/common';
import { demoBodyPipe } from './demo-body.pipe.js';
import { DemoRateLimit, DemoRateLimitGuard } from './demo-rate-limit.guard.js';
import { TokenRequestDto } from './demo.dto.js';
import { DemoTokens } from './demo.tokens.js';

const TOKEN_TTL_SECONDS = 3600;

/** Development tokens for the demo page; the module leaves it out when NODE_ENV=production. */
@Controller('demo')
@UsePipes(demoBodyPipe())
export class DemoTokenController {
  constructor(private readonly tokens: DemoTokens) {}

  @Post('token')
  @HttpCode(200)
  @UseGuards(DemoRateLimitGuard)
  @DemoRateLimit('token')
  issue(@Body() body: TokenRequestDto) {
    const token = this.tokens.sign(body.user_id, body.admin === true, TOKEN_TTL_SECONDS);
    return { status: 'success', data: { token, expires_in: TOKEN_TTL_SECONDS } };
  }
}
