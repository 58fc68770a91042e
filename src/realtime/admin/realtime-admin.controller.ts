import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  NotFoundException,
  type OnModuleInit,
  Param,
  Post,
  Query,
  ServiceUnavailableException,
  type Type,
  UseFilters,
  UseGuards,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { DeliveryTarget } from '../bus/delivery-target.js';
import { RealtimeService } from '../realtime.service.js';
import { RealtimeSendError } from '../realtime-send.error.js';
import { AdminAuthGuard } from './admin-auth.guard.js';
import { installAdminEarlyErrors, markAdminRoutes } from './admin-early-errors.js';
import { AdminExceptionFilter } from './admin-exception.filter.js';
import { BroadcastDto } from './dto/broadcast.dto.js';
import { ConnectionsQueryDto } from './dto/connections-query.dto.js';
import { ClusterAdminService, type Lookup } from './cluster-admin.service.js';
import { ReservedKeysPipe } from './reserved-keys.pipe.js';

function success<T>(data: T): { status: 'success'; data: T } {
  return { status: 'success', data };
}

/** Builds the admin controller under `prefix` (a route prefix is fixed when the class is made). */
export function createAdminController(prefix: string): Type<unknown> {
  @Controller(prefix)
  @UseGuards(AdminAuthGuard)
  @UseFilters(AdminExceptionFilter)
  // forbidNonWhitelisted: a misspelled key (`user` for `users`, `userId`) is an error, not a
  // filter or target silently left out, which would reach or list everyone.
  @UsePipes(
    new ReservedKeysPipe(),
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      forbidUnknownValues: true,
    }),
  )
  class RealtimeAdminController implements OnModuleInit {
    constructor(
      private readonly cluster: ClusterAdminService,
      private readonly realtime: RealtimeService,
      private readonly adapterHost: HttpAdapterHost,
    ) {}

    // Body-parser and `:id` decoding errors come before this class's filter can run.
    onModuleInit(): void {
      installAdminEarlyErrors(this.adapterHost, RealtimeAdminController);
    }

    @Get('stats')
    async getStats() {
      return success(await this.cluster.stats());
    }

    @Get('connections')
    async listConnections(@Query() query: ConnectionsQueryDto) {
      return success(await this.cluster.list(query.user_id, query.limit, query.offset));
    }

    @Get('connections/:id')
    async getConnection(@Param('id') id: string) {
      return success(found(await this.cluster.details(id), id));
    }

    @Delete('connections/:id')
    @HttpCode(200)
    async disconnect(@Param('id') id: string) {
      found(await this.cluster.kick(id), id, KICK_DEFERRED);
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
        if (!(error instanceof RealtimeSendError)) throw error;
        // Redis is down and the queue full: the request was fine, the service is unavailable.
        if (error.code === 'BUS_UNAVAILABLE') throw new ServiceUnavailableException(error.message);
        throw new BadRequestException(error.message);
      }
    }
  }
  markAdminRoutes(RealtimeAdminController);
  return RealtimeAdminController;
}

/** A kick that an instance could not be asked: it gets it once it can (ControlRedelivery). */
const KICK_DEFERRED = 'it will be closed there once they can be reached, if one of them has it';

/**
 * The connection's data; 404 when no instance has it, 503 when some could not be asked (and
 * `unanswered` says what then).
 */
function found<T>(lookup: Lookup<T>, id: string, unanswered = 'retry later'): T {
  if (lookup.found) return lookup.value;
  if (lookup.degraded) {
    throw new ServiceUnavailableException(
      `No connection with id ${id} on the instances that answered, and others could not be reached; ${unanswered}`,
    );
  }
  throw new NotFoundException(`No connection with id ${id}`);
}

/** Everyone only when `target` is left out: a target that names nobody is refused. */
function toTarget(body: BroadcastDto): DeliveryTarget {
  const { target } = body;
  if (target === undefined) return { kind: 'all' };
  const { users, event, room } = target;
  const chosen = [users, event, room].filter((value) => value !== undefined).length;
  if (chosen !== 1) {
    throw new BadRequestException(
      chosen === 0
        ? 'target must name one of users, event or room; leave target out to reach everyone'
        : 'target takes one of users, event or room',
    );
  }
  if (users !== undefined) return { kind: 'users', userIds: users };
  if (event !== undefined) return { kind: 'event', event };
  return { kind: 'room', room: room! };
}
