import type { MessageMappingProperties } from '@nestjs/websockets';
import type { BoundMessageHandler } from '../registry/realtime-connection.js';

type HandlerMap = Map<string, BoundMessageHandler>;

/**
 * Handler maps shared by connections. When a gateway's handlers are all direct (compiled once per
 * message type, not bound to a socket), the map a connection ends up with depends only on the
 * gateways bound so far, so connections share one map per such sequence instead of each building
 * its own: less heap and less work per connection. Shared maps are never changed once made.
 */
export class SharedHandlerMaps {
  private readonly empty: HandlerMap = new Map();
  /** From a shared map (or `empty`), by the message types of the next gateway, to the result. */
  private readonly next = new WeakMap<HandlerMap, Map<string, HandlerMap>>();
  private readonly shared = new WeakSet<HandlerMap>([this.empty]);

  /** The shared map for `before` plus the gateway's `handlers`, every one of them in `direct`. */
  after(
    before: HandlerMap | undefined,
    handlers: readonly Pick<MessageMappingProperties, 'message'>[],
    direct: ReadonlyMap<string, BoundMessageHandler>,
  ): HandlerMap {
    const from = before ?? this.empty;
    if (!this.shared.has(from)) {
      // This connection owns its map already (an earlier gateway was on Nest's path).
      for (const { message } of handlers) from.set(String(message), direct.get(String(message))!);
      return from;
    }
    const key = handlers.map(({ message }) => String(message)).join('\n');
    let byKey = this.next.get(from);
    if (!byKey) this.next.set(from, (byKey = new Map()));
    let result = byKey.get(key);
    if (!result) {
      result = new Map(from);
      for (const { message } of handlers) result.set(String(message), direct.get(String(message))!);
      this.shared.add(result);
      byKey.set(key, result);
    }
    return result;
  }

  /** True for a map shared by connections, which must be copied before it is changed. */
  isShared(map: HandlerMap): boolean {
    return this.shared.has(map);
  }
}
