import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Header,
  HttpCode,
  HttpException,
  HttpStatus,
  NotFoundException,
  Param,
  Post,
  Req,
  Res,
  ServiceUnavailableException,
  UseGuards,
  UsePipes,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { RealtimeService } from '../realtime/index.js';
import { NotifyDto } from './demo.dto.js';
import { DemoPage } from './demo-page.js';
import { demoBodyPipe } from './demo-body.pipe.js';
import { DemoRateLimit, DemoRateLimitGuard } from './demo-rate-limit.guard.js';
import { type AuthenticatedRequest, DemoUserGuard } from './demo-user.guard.js';
import {
  DemoUploadsService,
  MAX_UPLOADS_PER_USER,
  UPLOAD_DURATION_MS,
} from './demo-uploads.service.js';

const NOTIFICATION_ID = /^[\w.-]{1,64}$/;

/** The page loads only its own script and stylesheet, and talks only to this server. */
const PAGE_CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The demo's page and the REST routes that make events happen. */
@Controller()
@UsePipes(demoBodyPipe())
export class DemoController {
  constructor(
    private readonly realtime: RealtimeService,
    private readonly uploads: DemoUploadsService,
    private readonly page: DemoPage,
  ) {}

  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('content-security-policy', PAGE_CSP)
  @Header('cache-control', 'no-cache')
  index(): string {
    return this.page.html;
  }

  @Get('demo/app.js')
  @Header('content-type', 'text/javascript; charset=utf-8')
  @Header('cache-control', 'no-cache')
  script(): string {
    return this.page.script;
  }

  @Get('demo/styles.css')
  @Header('content-type', 'text/css; charset=utf-8')
  @Header('cache-control', 'no-cache')
  styles(): string {
    return this.page.styles;
  }

  /** The live admin dashboard; it reads the admin API with the token the person gives it. */
  @Get('admin')
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('content-security-policy', PAGE_CSP)
  @Header('cache-control', 'no-cache')
  admin(): string {
    return this.page.adminHtml;
  }

  @Get('demo/admin.js')
  @Header('content-type', 'text/javascript; charset=utf-8')
  @Header('cache-control', 'no-cache')
  adminScript(): string {
    return this.page.adminScript;
  }

  @Get('demo/admin.css')
  @Header('content-type', 'text/css; charset=utf-8')
  @Header('cache-control', 'no-cache')
  adminStyles(): string {
    return this.page.adminStyles;
  }

  /** The compiled client SDK as native ES modules: /sdk/client/index.js, /sdk/protocol/*.js. */
  @Get('sdk/:folder/:file')
  @Header('content-type', 'text/javascript; charset=utf-8')
  @Header('cache-control', 'no-cache')
  @Header('x-content-type-options', 'nosniff')
  async sdk(@Param('folder') folder: string, @Param('file') file: string): Promise<string> {
    const text = await this.page.sdkModule(folder, file);
    if (text === undefined) throw new NotFoundException('No such SDK module');
    return text;
  }

  @Post('demo/upload')
  @HttpCode(202)
  @UseGuards(DemoUserGuard, DemoRateLimitGuard)
  @DemoRateLimit('user')
  startUpload(
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: ServerResponse,
  ) {
    const started = this.uploads.start(request.principal.userId);
    if (started === 'user-busy') {
      // One of them is done within an upload's run time.
      response.setHeader('retry-after', String(Math.ceil(UPLOAD_DURATION_MS / 1000)));
      throw new HttpException(
        `At most ${MAX_UPLOADS_PER_USER} demo uploads per user at a time`,
        HttpStatus.TOO_MANY_REQUESTS,
      );
    }
    if (started === 'busy') throw new ServiceUnavailableException('Too many demo uploads running');
    return { status: 'success', data: { upload_id: started.uploadId } };
  }

  @Post('demo/notify')
  @HttpCode(200)
  @UseGuards(DemoUserGuard, DemoRateLimitGuard)
  @DemoRateLimit('notify')
  async notify(@Body() body: NotifyDto) {
    const reached = await this.realtime.sendSystemNotification(body.message, body.level ?? 'info');
    return { status: 'success', data: { connections_reached: reached } };
  }

  /** The seed flow: a REST change pushed to every connection of the user. */
  @Post('notifications/:id/read')
  @HttpCode(200)
  @UseGuards(DemoUserGuard, DemoRateLimitGuard)
  @DemoRateLimit('user')
  async markRead(@Param('id') id: string, @Req() request: AuthenticatedRequest) {
    // The id is echoed to the page and over the socket: as bounded as the page's own field.
    if (!NOTIFICATION_ID.test(id)) {
      throw new BadRequestException('id must be 1-64 letters, digits, or . _ -');
    }
    const readAt = new Date().toISOString();
    const reached = await this.realtime.sendToUser(request.principal.userId, 'notification_read', {
      notification_id: id,
      read_at: readAt,
    });
    return {
      status: 'success',
      data: { notification_id: id, read_at: readAt, connections_reached: reached },
    };
  }
}
