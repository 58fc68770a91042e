import type { ExecutionContext, Type } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/internal';

type Method = (...args: unknown[]) => unknown;
type WsArgumentsHost = ReturnType<ExecutionContext['switchToWs']>;

/**
 * Nest's execution context for one inbound ws message, whose `switchToWs()` answers from the
 * prototype. Nest's own assigns an object literal of three new closures onto the context on
 * every call, and the guard and `@CurrentConnection` call it on every message (~450 bytes of
 * garbage per ping). What guards, filters and parameter decorators read is the same.
 */
export class WsExecutionContext extends ExecutionContextHost implements WsArgumentsHost {
  constructor(args: unknown[], gatewayClass: Type, handler: Method) {
    super(args, gatewayClass, handler);
    this.setType('ws');
  }

  override switchToWs(): WsArgumentsHost {
    return this;
  }

  getClient<T = unknown>(): T {
    return this.getArgByIndex<T>(0);
  }

  getData<T = unknown>(): T {
    return this.getArgByIndex<T>(1);
  }

  getPattern(): string {
    return this.getArgByIndex<string>(this.getArgs().length - 1);
  }
}
