import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  Query,
  type Type,
  UseFilters,
  UseGuards,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { CloseCode, CloseReason } from '../../protocol/index.js';
import type { DeliveryTarget } from '../bus/delivery-target.js';
import { RealtimeService } from '../realtime.service.js';
import { RealtimeSendError } from '../realtime-send.error.js';
import { AdminAuthGuard } from './admin-auth.guard.js';
import { AdminExceptionFilter } from './admin-exception.filter.js';
import { BroadcastDto } from './dto/broadcast.dto.js';
import { ConnectionsQueryDto } from './dto/connections-query.dto.js';
import { RealtimeStatsService } from './realtime-stats.service.js';

function success<T>(data: T): { status: 'success'; data: T } {
  return { status: 'success', data };
}

/** Builds the admin controller under `prefix` (a route prefix is fixed when the class is made). */
export function createAdminController(prefix: string): Type<unknown> {
  @Controller(prefix)
  @UseGuards(AdminAuthGuard)
  @UseFilters(AdminExceptionFilter)
  @UsePipes(new ValidationPipe({ whitelist: true, transform: true, forbidUnknownValues: true }))
  class RealtimeAdminController {
    constructor(
      private readonly stats: RealtimeStatsService,
      private readonly realtime: RealtimeService,
    ) {}

    @Get('stats')
    getStats() {
      return success(this.stats.stats());
    }

    @Get('connections')
    listConnections(@Query() query: ConnectionsQueryDto) {
      return success(this.stats.list(query.user_id, query.limit, query.offset));
    }

    @Get('connections/:id')
    getConnection(@Param('id') id: string) {
      const details = this.stats.details(id);
      if (!details) throw new NotFoundException(`No connection with id ${id}`);
      return success(details);
    }

    @Delete('connections/:id')
    @HttpCode(200)
    disconnect(@Param('id') id: string) {
      const ended = this.realtime.disconnectConnection(
        id,
        CloseCode.DISCONNECTED_BY_ADMIN,
        CloseReason.DISCONNECTED_BY_ADMIN,
      );
      if (!ended) throw new NotFoundException(`No connection with id ${id}`);
      return success({ connection_id: id, disconnected: true });
    }

    @Post('broadcast')
    @HttpCode(200)
    async broadcast(@Body() body: BroadcastDto) {
      const target = toTarget(body);
      try {
        const message = await this.realtime.publishMessage(
          body.type,
          body.data,
          target,
          'admin_broadcast',
        );
        return success({
          message_sent: message.reached > 0,
          connections_reached: message.reached,
          message_id: message.id,
        });
      } catch (error) {
        if (error instanceof RealtimeSendError) throw new BadRequestException(error.message);
        throw error;
      }
    }
  }
  return RealtimeAdminController;
}

function toTarget(body: BroadcastDto): DeliveryTarget {
  const target = body.target ?? {};
  const chosen = [target.users, target.event, target.room].filter((v) => v !== undefined);
  if (chosen.length > 1) {
    throw new BadRequestException('target takes one of users, event or room');
  }
  if (target.users) return { kind: 'users', userIds: target.users };
  if (target.event) return { kind: 'event', event: target.event };
  if (target.room) return { kind: 'room', room: target.room };
  return { kind: 'all' };
}
