import 'reflect-metadata';
import { ExecutionContextHost } from '@nestjs/core/internal';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WsExecutionContext } from './ws-execution-context.js';

class SomeGateway {
  handle(): void {}
}

/** What a guard, filter or parameter decorator can read from a context for one message. */
function readings(context: ExecutionContextHost) {
  const ws = context.switchToWs();
  return {
    type: context.getType(),
    class: context.getClass(),
    handler: context.getHandler(),
    args: context.getArgs(),
    second: context.getArgByIndex(1),
    client: ws.getClient(),
    data: ws.getData(),
    pattern: ws.getPattern(),
  };
}

describe('WsExecutionContext', () => {
  const handler = SomeGateway.prototype.handle as (...args: unknown[]) => unknown;

  it('reads as Nest’s own ws context does', () => {
    const args = [{ socket: true }, { text: 'hi' }, { inbound: 1 }, 'some.type'];
    const nest = new ExecutionContextHost(args, SomeGateway, handler);
    nest.setType('ws');
    const ours = new WsExecutionContext(args, SomeGateway, handler);
    assert.deepEqual(readings(ours), readings(nest));
    assert.equal(ours.getType(), 'ws');
    assert.equal(ours.switchToWs().getPattern(), 'some.type');
  });

  it('switches to ws without adding to the context', () => {
    const ours = new WsExecutionContext([1, 2, 'p'], SomeGateway, handler);
    const before = Object.keys(ours);
    assert.equal(ours.switchToWs(), ours);
    assert.deepEqual(Object.keys(ours), before);
  });
});
