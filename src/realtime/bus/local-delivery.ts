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
    const { position, target } = message;
    if (position && this.watermark.enabled) this.watermark.observe(position);
    const except = target.kind === 'all' ? target.exceptUserId : undefined;
    // Made at the first recipient: a message nobody here receives (an event without subscribers
    // here, a user connected elsewhere) costs no encoding.
    let frame: Buffer | undefined;
    let reached = 0;
    for (const connection of this.recipients(target)) {
      if (except !== undefined && connection.userId === except) continue;
      if (position && connection.replayedUpTo && wasReplayed(connection.replayedUpTo, position)) {
        continue;
      }
      frame ??= Buffer.from(position ? withPosition(message.frame, position) : message.frame);
      if (!this.writer.write(connection, frame, true)) continue;
      reached++;
      if (position && connection.resumeOpen) noteFirstLive(connection, position);
    }
    return reached;
  }

  /** The registry's own sets where there is one: no copy and no generator per message. */
  private recipients(target: DeliveryTarget): Iterable<RealtimeConnection> {
    switch (target.kind) {
      case 'connection': {
        const connection = this.registry.get(target.connectionId);
        return connection ? [connection] : NONE;
      }
      case 'users':
        if (target.userIds.length === 1) return this.registry.ofUser(target.userIds[0]!);
        return [...new Set(target.userIds)].flatMap((userId) => [...this.registry.ofUser(userId)]);
      case 'event':
        return this.registry.subscribersOf(target.event);
      case 'room':
        return this.registry.membersOf(target.room);
      case 'all':
        return this.registry.all();
    }
  }
}

const NONE: readonly RealtimeConnection[] = [];

function wasReplayed(replayedUpTo: Map<string, string>, position: StreamPosition): boolean {
  const last = replayedUpTo.get(position.stream);
  return last !== undefined && compareOffsets(position.offset, last) <= 0;
}

/** Remembers the first live offset per stream, where a replay to this connection must stop. */
function noteFirstLive(connection: RealtimeConnection, position: StreamPosition): void {
  const offsets = (connection.firstLiveOffsets ??= new Map());
  if (!offsets.has(position.stream)) offsets.set(position.stream, position.offset);
}
