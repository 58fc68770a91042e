import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { SocketWriter } from '../gateway/socket-writer.js';
import { ConnectionRegistry } from '../registry/connection-registry.js';
import type { RealtimeConnection } from '../registry/realtime-connection.js';
import type { DeliveryTarget, OutboundMessage } from './delivery-target.js';
import { RealtimeBus } from './realtime-bus.js';
import type { StreamPosition } from '../../protocol/index.js';
import { compareOffsets } from '../../protocol/index.js';
import { withPosition } from '../recovery/positioned-frame.js';
import { StreamWatermark } from '../recovery/stream-watermark.js';

/**
 * The one place messages reach this instance's sockets. Targets are looked up by index; the frame
 * is turned into bytes once per message, not once per recipient.
 */
@Injectable()
export class LocalDelivery implements OnModuleInit, OnApplicationShutdown {
  constructor(
    private readonly bus: RealtimeBus,
    private readonly registry: ConnectionRegistry,
    private readonly writer: SocketWriter,
    private readonly watermark: StreamWatermark,
  ) {}

  onModuleInit(): void {
    this.bus.subscribe((message) => this.deliver(message));
  }

  /** After the connections were closed (beforeApplicationShutdown), the bus goes too. */
  async onApplicationShutdown(): Promise<void> {
    await this.bus.close();
  }

  deliver(message: OutboundMessage): number {
    const { position } = message;
    const frame = Buffer.from(position ? withPosition(message.frame, position) : message.frame);
    if (position && this.watermark.enabled) this.watermark.observe(position);
    let reached = 0;
    for (const connection of this.resolve(message.target)) {
      if (position && connection.replayedUpTo && wasReplayed(connection.replayedUpTo, position)) {
        continue;
      }
      if (!this.writer.write(connection, frame, true)) continue;
      reached++;
      if (position && connection.resumeOpen) noteFirstLive(connection, position);
    }
    return reached;
  }

  private *resolve(target: DeliveryTarget): Iterable<RealtimeConnection> {
    switch (target.kind) {
      case 'connection': {
        const connection = this.registry.get(target.connectionId);
        if (connection) yield connection;
        return;
      }
      case 'users':
        for (const userId of new Set(target.userIds)) yield* this.registry.ofUser(userId);
        return;
      case 'event':
        yield* this.registry.subscribersOf(target.event);
        return;
      case 'room':
        yield* this.registry.membersOf(target.room);
        return;
      case 'all':
        for (const connection of this.registry.all()) {
          if (connection.userId !== target.exceptUserId) yield connection;
        }
        return;
    }
  }
}

function wasReplayed(replayedUpTo: Map<string, string>, position: StreamPosition): boolean {
  const last = replayedUpTo.get(position.stream);
  return last !== undefined && compareOffsets(position.offset, last) <= 0;
}

/** Remembers the first live offset per stream, where a replay to this connection must stop. */
function noteFirstLive(connection: RealtimeConnection, position: StreamPosition): void {
  const offsets = (connection.firstLiveOffsets ??= new Map());
  if (!offsets.has(position.stream)) offsets.set(position.stream, position.offset);
}
