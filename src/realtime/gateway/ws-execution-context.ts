import type { ExecutionContext, Type } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/internal';

type Method = (...args: unknown[]) => unknown;
type WsArgumentsHost = ReturnType<ExecutionContext['switchToWs']>;

/**
 * Nest's execution context for one inbound ws message, whose `switchToWs()` answers from the
 * prototype. Nest's own assigns an object literal of three new closures onto the context on
 * every call: garbage per message, and once V8 pretenures that literal (it does after bursts in
 * which contexts outlive a scavenge), each message's closures, context and arguments stay alive
 * until a full GC. What guards, filters and parameter decorators read is the same.
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
