import { type DynamicModule, Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { RealtimeModule } from '../realtime/index.js';
import { ChatGateway } from './chat.gateway.js';
import type { DemoConfig } from './demo-config.js';
import { DemoController } from './demo.controller.js';
import { DemoPage } from './demo-page.js';
import { DemoRateLimitGuard } from './demo-rate-limit.guard.js';
import { DemoTokenController } from './demo-token.controller.js';
import { DemoTokens } from './demo.tokens.js';
import { DemoUploadsService } from './demo-uploads.service.js';
import { DemoUserGuard } from './demo-user.guard.js';
import { hideFramework } from './hide-framework.js';

@Module({})
export class DemoModule implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  static forRoot(config: DemoConfig): DynamicModule {
    const secret = config.realtime.jwt.secret ?? '';
    return {
      module: DemoModule,
      imports: [RealtimeModule.forRoot(config.realtime)],
      controllers: config.production ? [DemoController] : [DemoController, DemoTokenController],
      providers: [
        { provide: DemoTokens, useValue: new DemoTokens(secret) },
        DemoPage,
        DemoUploadsService,
        DemoUserGuard,
        DemoRateLimitGuard,
        ChatGateway,
      ],
    };
  }

  onModuleInit(): void {
    hideFramework(this.adapterHost);
  }
}
