import type { CanActivate, INestApplicationContext, Type } from '@nestjs/common';
import { ExternalContextCreator, MetadataScanner, type NestContainer } from '@nestjs/core';
import {
  ExecutionContextHost,
  FORBIDDEN_MESSAGE,
  GuardsContextCreator,
  InterceptorsContextCreator,
  PipesContextCreator,
} from '@nestjs/core/internal';
import { WsException } from '@nestjs/websockets';
import { ExceptionFiltersContext } from '@nestjs/websockets/context/exception-filters-context.js';
import { GatewayMetadataExplorer } from '@nestjs/websockets/gateway-metadata-explorer.js';
import { isObservable, lastValueFrom } from 'rxjs';
import type { BoundMessageHandler } from '../registry/realtime-connection.js';
import type { InboundContext } from './inbound-context.js';
import { compileParams, resolveParams } from './direct-handler-params.js';
import { gatewayProviders } from './gateway-providers.js';
import { isThenable } from './thenable.js';
import { WsExecutionContext } from './ws-execution-context.js';

type Method = (...args: unknown[]) => unknown;
type Handler = (data: unknown, context: InboundContext) => unknown;

/**
 * Message handlers that do per message what Nest's WsContextCreator does (guards, then pipes per
 * parameter, then the method; a throw goes to the gateway's exception filters), with everything
 * it resolves per call resolved once here: the enhancers are Nest's own instances, found by Nest's
 * own context creators (global ones included), and ValidationPipes take {@link
 * validationShortcut}. Each step stays synchronous until something returns a promise.
 *
 * Only handlers Nest would run the same way are compiled: static gateways, no interceptors, no
 * manual acks, parameters of socket, payload and custom decorators, and a message type that no
 * other gateway also handles. The rest keep Nest's own callback.
 */
export function compileDirectHandlers(
  app: INestApplicationContext,
): Map<string, BoundMessageHandler> {
  const external = app.get(ExternalContextCreator, { strict: false });
  const container = (external as unknown as { container: NestContainer }).container;
  const config = container.applicationConfig;
  const creators = {
    guards: new GuardsContextCreator(container, config),
    pipes: new PipesContextCreator(container, config),
    interceptors: new InterceptorsContextCreator(container, config),
    filters: new ExceptionFiltersContext(container),
  };
  const explorer = new GatewayMetadataExplorer(new MetadataScanner());
  const compiled = new Map<string, BoundMessageHandler>();
  const seen = new Set<string>();
  for (const { moduleKey, wrapper } of gatewayProviders(app)) {
    const { instance } = wrapper;
    if (!instance) continue;
    const isStatic = wrapper.isDependencyTreeStatic() && !wrapper.isTransient;
    for (const { message, methodName, callback, isAckHandledManually } of explorer.explore(
      instance,
    )) {
      const type = String(message);
      if (seen.has(type)) {
        // Which gateway wins would be Nest's binding order: leave it to Nest.
        compiled.delete(type);
        continue;
      }
      seen.add(type);
      if (!isStatic || isAckHandledManually) continue;
      const handler = compileHandler(
        instance as object,
        methodName,
        callback as Method,
        moduleKey,
        creators,
      );
      if (handler) compiled.set(type, handler as BoundMessageHandler);
    }
  }
  return compiled;
}

interface Creators {
  guards: GuardsContextCreator;
  pipes: PipesContextCreator;
  interceptors: InterceptorsContextCreator;
  filters: ExceptionFiltersContext;
}

function compileHandler(
  instance: object,
  methodName: string,
  method: Method,
  moduleKey: string,
  creators: Creators,
): Handler | undefined {
  if (creators.interceptors.create(instance, method, moduleKey).length > 0) return undefined;
  const guards = creators.guards.create(instance, method, moduleKey);
  const classPipes = creators.pipes.create(instance, method, moduleKey);
  const params = compileParams(instance, methodName, classPipes, moduleKey, creators.pipes);
  if (params === undefined) return undefined;
  const exceptions = creators.filters.create(instance, method, moduleKey);
  const gatewayClass = instance.constructor as Type;
  const pattern: unknown = Reflect.getMetadata('message', method) ?? 'unknown';
  const argsLength = params.length > 0 ? Math.max(...params.map((param) => param.index)) + 1 : 0;

  const context = (args: unknown[]): ExecutionContextHost =>
    new WsExecutionContext(args, gatewayClass, method);
  const call = (args: unknown[]): unknown => {
    // As Nest when the parameter metadata is empty: the method gets the raw arguments.
    if (params.length === 0) return method.apply(instance, args);
    const values = new Array<unknown>(argsLength).fill(undefined);
    return then(resolveParams(params, args, values, 0), () => method.apply(instance, values));
  };
  const fail = (error: unknown, args: unknown[]): undefined => {
    exceptions.handle(error as Error, context(args));
    return undefined;
  };
  return (data, inbound) => {
    const args: unknown[] = [inbound.connection.socket, data, inbound, pattern];
    try {
      const guarded = guards.length > 0 ? activate(guards, context(args)) : undefined;
      const result = then(guarded, () => call(args));
      // A rejected promise (from a guard, a pipe or the method) goes to the filters, as in Nest.
      return isThenable(result)
        ? result.then(undefined, (error: unknown) => fail(error, args))
        : result;
    } catch (error) {
      return fail(error, args);
    }
  };
}

/** GuardsConsumer.tryActivate, synchronous while the guards answer booleans. */
function activate(guards: CanActivate[], context: ExecutionContextHost): Promise<void> | undefined {
  for (let i = 0; i < guards.length; i++) {
    const result = guards[i]!.canActivate(context);
    if (typeof result === 'boolean') {
      if (!result) throw new WsException(FORBIDDEN_MESSAGE);
      continue;
    }
    const rest = guards.slice(i + 1);
    return pickResult(result).then((allowed) => {
      if (!allowed) throw new WsException(FORBIDDEN_MESSAGE);
      return activate(rest, context);
    });
  }
  return undefined;
}

async function pickResult(result: unknown): Promise<unknown> {
  const value: unknown = await result;
  return isObservable(value) ? lastValueFrom(value) : value;
}

function then(step: Promise<void> | undefined, next: () => unknown): unknown {
  return step === undefined ? next() : step.then(next);
}
