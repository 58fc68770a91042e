import type { PipeTransform, Type } from '@nestjs/common';
import { CUSTOM_ROUTE_ARGS_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/internal';
import {
  ExecutionContextHost,
  ParamsTokenFactory,
  PipesContextCreator,
} from '@nestjs/core/internal';
import { DEFAULT_CALLBACK_METADATA } from '@nestjs/websockets/context/ws-metadata-constants.js';
import { isThenable } from './thenable.js';
import { WsExecutionContext } from './ws-execution-context.js';
import { NO_SHORTCUT, type PipeShortcut, validationShortcut } from './validation-shortcut.js';

const SOCKET = 0; // WsParamtype
const PAYLOAD = 3;
const ACK = 13;

type Method = (...args: unknown[]) => unknown;

/** One parameter of a handler: where its value comes from, and the pipes it goes through. */
export interface Param {
  index: number;
  extract: (args: unknown[]) => unknown;
  metadata: { metatype: unknown; type: string; data: unknown; schema: unknown };
  pipes: { pipe: PipeTransform; shortcut: PipeShortcut | undefined }[];
}

/** Fills `values` from parameter `from` on; a promise once a pipe answers asynchronously. */
export function resolveParams(
  params: Param[],
  args: unknown[],
  values: unknown[],
  from: number,
): Promise<void> | undefined {
  for (let i = from; i < params.length; i++) {
    const param = params[i]!;
    let value = param.extract(args);
    if (isThenable(value)) {
      // An async custom decorator: the pipes get what it resolves to (PipesConsumer).
      return applyPipes(param, value, 0).then((piped) => {
        values[param.index] = piped;
        return resolveParams(params, args, values, i + 1);
      });
    }
    for (let p = 0; p < param.pipes.length; p++) {
      const { pipe, shortcut } = param.pipes[p]!;
      const quick = shortcut ? shortcut(value, param.metadata as never) : NO_SHORTCUT;
      if (quick !== NO_SHORTCUT) {
        value = quick;
        continue;
      }
      return applyPipes(param, pipe.transform(value, param.metadata as never), p + 1).then(
        (piped) => {
          values[param.index] = piped;
          return resolveParams(params, args, values, i + 1);
        },
      );
    }
    values[param.index] = value;
  }
  return undefined;
}

/** PipesConsumer.applyPipes from pipe `from` on. */
async function applyPipes(param: Param, value: unknown, from: number): Promise<unknown> {
  let result: unknown = await value;
  for (let p = from; p < param.pipes.length; p++) {
    result = await param.pipes[p]!.pipe.transform(result, param.metadata as never);
  }
  return result;
}

interface ParamMetadata {
  index: number;
  data: unknown;
  pipes?: unknown[];
  schema?: unknown;
  factory?: (data: unknown, context: ExecutionContextHost) => unknown;
}

/** The parameters as WsContextCreator reads them; undefined for kinds it is not worth mirroring. */
export function compileParams(
  instance: object,
  methodName: string,
  classPipes: PipeTransform[],
  moduleKey: string,
  pipesCreator: PipesContextCreator,
): Param[] | undefined {
  // Without decorated parameters Nest passes (socket, payload, ack), through the pipes too.
  const metadata = (Reflect.getMetadata(ROUTE_ARGS_METADATA, instance.constructor, methodName) ??
    DEFAULT_CALLBACK_METADATA) as Record<string, ParamMetadata>;
  const paramtypes = (Reflect.getMetadata('design:paramtypes', instance, methodName) ??
    []) as unknown[];
  const method = (instance as Record<string, unknown>)[methodName] as Method;
  const tokens = new ParamsTokenFactory();
  pipesCreator.setModuleContext(moduleKey);
  const params: Param[] = [];
  for (const [key, param] of Object.entries(metadata)) {
    let extract: Param['extract'];
    let type: string;
    if (key.includes(CUSTOM_ROUTE_ARGS_METADATA)) {
      const { factory, data } = param;
      if (typeof factory !== 'function') return undefined;
      const gatewayClass = instance.constructor as Type;
      extract = (args) => factory(data, new WsExecutionContext(args, gatewayClass, method));
      type = 'custom';
    } else {
      const kind = Number(key.split(':')[0]);
      const { data } = param;
      // As WsParamsFactory.
      if (kind === SOCKET) extract = (args) => args[0];
      else if (kind === ACK) extract = (args) => args.find((arg) => typeof arg === 'function');
      else if (kind !== PAYLOAD) return undefined;
      else if (!data) extract = (args) => args[1];
      else
        extract = (args) =>
          (args[1] as Record<PropertyKey, unknown> | undefined)?.[data as PropertyKey];
      type = tokens.exchangeEnumForString(kind);
    }
    const pipes = [...classPipes, ...pipesCreator.createConcreteContext(param.pipes ?? [])];
    params.push({
      index: param.index,
      extract,
      metadata: { metatype: paramtypes[param.index], type, data: param.data, schema: param.schema },
      pipes: pipes.map((pipe) => ({ pipe, shortcut: validationShortcut(pipe) })),
    });
  }
  return params;
}
