import type { INestApplicationContext } from '@nestjs/common';
import { MetadataScanner } from '@nestjs/core';
import { GatewayMetadataExplorer } from '@nestjs/websockets/gateway-metadata-explorer.js';
import { gatewayProviders } from './gateway-providers.js';

/** What the gateway connect machinery of Nest can do per connection for one gateway. */
export interface GatewayFacts {
  /** Its message types, in the order Nest binds them. */
  readonly messages: readonly string[];
  /**
   * True when Nest subscribed something to its connection or disconnect stream: a
   * `handleConnection` or `handleDisconnect`, or any request-scoped gateway (Nest subscribes a
   * per-request resolver for those whether or not the methods exist).
   */
  readonly hooked: boolean;
}

/** What one gateway connect callback did for the first admitted connection. */
export interface ObservedCallback {
  /** Message types it bound, in order; undefined unless it bound exactly once, for that socket. */
  messages: readonly string[] | undefined;
  /** True when all of them were direct handlers, so that the connection could share its map. */
  direct: boolean;
  /** Disconnect listeners it asked for, for that socket. */
  disconnects: number;
}

/**
 * What each gateway of the app, in Nest's order, does per connection. Request-scoped gateways
 * count as hooked.
 */
export function gatewayFacts(app: INestApplicationContext): GatewayFacts[] {
  const explorer = new GatewayMetadataExplorer(new MetadataScanner());
  const facts: GatewayFacts[] = [];
  for (const { wrapper } of gatewayProviders(app)) {
    const { instance } = wrapper;
    if (!instance || typeof instance !== 'object') {
      facts.push({ messages: [], hooked: true });
      continue;
    }
    const gateway = instance as { handleConnection?: unknown; handleDisconnect?: unknown };
    facts.push({
      messages: explorer.explore(instance).map(({ message }) => String(message)),
      hooked:
        !wrapper.isDependencyTreeStatic() ||
        gateway.handleConnection != null ||
        gateway.handleDisconnect != null,
    });
  }
  return facts;
}

/**
 * Which connect callbacks are those of quiet gateways: for each callback, the message types to
 * bind in its place, or undefined when the callback must keep running.
 *
 * A gateway is quiet when it is static, has no connection or disconnect hook, and every one of
 * its handlers is direct: then its callback only sets the connection's shared handler map. A
 * callback is matched to its gateway by its exact list of message types (direct types belong to
 * one gateway only); callbacks that bind no types are matched as a group to the gateways without
 * handlers, when all of those are hookless. Anything that does not match keeps running.
 *
 * Gateways sharing a server share Nest's connection and disconnect streams: the first of their
 * callbacks to run fires every hook of the group. Which gateways share is Nest's business, so no
 * callback before the last possibly hooked one is skipped: each hook still fires at the same
 * point as before.
 */
export function quietCallbacks(
  observed: readonly ObservedCallback[],
  gateways: readonly GatewayFacts[],
): (readonly string[] | undefined)[] {
  const none = observed.map(() => undefined);
  if (observed.length !== gateways.length) return none;
  const gatewayOf = new Array<GatewayFacts | undefined>(observed.length);
  const claimed = new Set<GatewayFacts>();
  observed.forEach((callback, index) => {
    if (!callback.messages?.length) return;
    const candidates = gateways.filter((gateway) => sameList(gateway.messages, callback.messages!));
    if (candidates.length !== 1 || claimed.has(candidates[0]!)) return;
    claimed.add(candidates[0]!);
    gatewayOf[index] = candidates[0];
  });
  // A callback that bound no types is one of a gateway without handlers (Nest binds them all).
  const emptyCallbacks = observed.filter((callback) => callback.messages?.length === 0).length;
  const emptyGateways = gateways.filter((gateway) => gateway.messages.length === 0);
  const emptyAreHookless =
    emptyCallbacks === emptyGateways.length && emptyGateways.every((gateway) => !gateway.hooked);
  // Any other callback left over is one of the gateways left over, in some order.
  const leftovers = gateways.filter(
    (gateway) => !claimed.has(gateway) && !(emptyAreHookless && gateway.messages.length === 0),
  );
  const leftoversAreHookless = leftovers.every((gateway) => !gateway.hooked);
  const isEmpty = (index: number): boolean =>
    emptyAreHookless && observed[index]!.messages?.length === 0;

  const quiet = observed.map((callback, index) => {
    const gateway = gatewayOf[index];
    const bindsOnce = callback.messages !== undefined && callback.disconnects === 1;
    if (!bindsOnce || !callback.direct) return false;
    return gateway ? !gateway.hooked : isEmpty(index);
  });
  const mayBeHooked = (index: number): boolean =>
    gatewayOf[index] ? gatewayOf[index].hooked : !isEmpty(index) && !leftoversAreHookless;
  let lastHooked = -1;
  for (let index = 0; index < observed.length; index++) {
    if (mayBeHooked(index)) lastHooked = index;
  }
  return observed.map((callback, index) =>
    quiet[index] && index > lastHooked ? callback.messages : undefined,
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
