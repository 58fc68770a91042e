import { Logger } from '@nestjs/common';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { BoundMessageHandler, RealtimeConnection } from '../registry/realtime-connection.js';
import { type GatewayFacts, type ObservedCallback, quietCallbacks } from './quiet-gateways.js';

/** A gateway's connection callback, as Nest's WebSocketsController hands it to the adapter. */
export type GatewayConnectHandler = (socket: WebSocket, request: IncomingMessage) => void;

type HandlerMap = Map<string, BoundMessageHandler>;
type Mappings = readonly Pick<MessageMappingProperties, 'message'>[];

/** The adapter's binding of handlers that are all direct (the same for every connection). */
export type DirectBinding = (before: HandlerMap | undefined, handlers: Mappings) => HandlerMap;

interface Plan {
  /** The quiet gateways' types before the first callback that runs, and their shared map. */
  readonly leadingTypes: Mappings;
  readonly leading: HandlerMap | undefined;
  /** Then in order: a callback to run, or the types of quiet gateways to bind in its place. */
  readonly steps: readonly (GatewayConnectHandler | Mappings)[];
}

interface Watch extends ObservedCallback {
  readonly socket: WebSocket;
  binds: number;
}

/**
 * Hands each admitted socket to every gateway, as Nest's connect callbacks would, but without
 * running the callbacks of quiet gateways (see {@link quietCallbacks}): for those, Nest only
 * binds message handlers that are the same for every connection, so their shared handler map is
 * assigned directly. The first connection runs every callback and is watched to learn which are
 * which; if anything is unclear, the callbacks keep running: slower, never wrong.
 */
export class GatewayConnector {
  private readonly callbacks: GatewayConnectHandler[] = [];
  private plan: Plan | undefined;
  private watch: Watch | undefined;
  private learning = true;

  constructor(
    private readonly gateways: () => readonly GatewayFacts[],
    private readonly bindDirect: DirectBinding,
  ) {}

  /** Adds a gateway's callback; a later gateway means learning again. */
  add(callback: GatewayConnectHandler): void {
    this.callbacks.push(callback);
    this.plan = undefined;
  }

  connect(socket: WebSocket, request: IncomingMessage, connection: RealtimeConnection): void {
    const plan = this.plan;
    if (!plan) return this.connectAndLearn(socket, request);
    if (plan.leading) {
      connection.handlers =
        connection.handlers === undefined
          ? plan.leading
          : this.bindDirect(connection.handlers, plan.leadingTypes);
    }
    for (const step of plan.steps) {
      if (typeof step === 'function') step(socket, request);
      else connection.handlers = this.bindDirect(connection.handlers, step);
    }
  }

  /** Told by the adapter of each message handler binding (watched while learning). */
  sawMessageHandlers(socket: WebSocket, handlers: Mappings, direct: boolean): void {
    const watch = this.watch;
    if (!watch) return;
    watch.binds++;
    const ours = watch.socket === socket && watch.binds === 1;
    watch.messages = ours ? handlers.map(({ message }) => String(message)) : undefined;
    watch.direct = ours && direct;
  }

  /** Told by the adapter of each disconnect listener asked for (watched while learning). */
  sawDisconnectHook(socket: WebSocket): void {
    const watch = this.watch;
    if (!watch) return;
    // Another socket's listener is something unexpected: count it as a second one.
    watch.disconnects += watch.socket === socket ? 1 : 2;
  }

  private connectAndLearn(socket: WebSocket, request: IncomingMessage): void {
    if (!this.learning) {
      for (const callback of this.callbacks) callback(socket, request);
      return;
    }
    const observed: ObservedCallback[] = [];
    try {
      for (const callback of this.callbacks) {
        const watch: Watch = {
          socket,
          binds: 0,
          messages: undefined,
          direct: false,
          disconnects: 0,
        };
        this.watch = watch;
        callback(socket, request);
        // Bound nothing at all: not Nest's usual callback.
        if (watch.binds === 0) watch.messages = undefined;
        observed.push(watch);
      }
    } catch (error) {
      this.learning = false;
      throw error;
    } finally {
      this.watch = undefined;
    }
    try {
      this.plan = this.planFor(observed);
    } catch (error) {
      this.learning = false;
      new Logger('RealtimeWsAdapter').warn({
        event: 'quiet_gateways.unavailable',
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  private planFor(observed: readonly ObservedCallback[]): Plan {
    const quiet = quietCallbacks(observed, this.gateways());
    const steps: (GatewayConnectHandler | Mappings)[] = [];
    let leadingTypes: Mappings = [];
    let leadingQuiet = false;
    let pending: { message: string }[] | undefined;
    this.callbacks.forEach((callback, index) => {
      const types = quiet[index];
      if (types === undefined) {
        pending = undefined;
        steps.push(callback);
        return;
      }
      const mappings = types.map((message) => ({ message }));
      // Consecutive quiet gateways bind as one: the same types in the same order.
      if (steps.length === 0) {
        leadingQuiet = true;
        leadingTypes = [...leadingTypes, ...mappings];
      } else if (pending) pending.push(...mappings);
      else steps.push((pending = mappings));
    });
    return {
      leadingTypes,
      // Even with no types at all, Nest would have given the connection an (empty) map.
      leading: leadingQuiet ? this.bindDirect(undefined, leadingTypes) : undefined,
      steps,
    };
  }
}
