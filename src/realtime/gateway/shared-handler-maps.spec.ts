import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { BoundMessageHandler } from '../registry/realtime-connection.js';
import { SharedHandlerMaps } from './shared-handler-maps.js';

const handler = (): BoundMessageHandler => () => undefined;
const mappings = (...types: string[]): MessageMappingProperties[] =>
  types.map((message) => ({
    message,
    methodName: message,
    callback: () => Promise.resolve(),
    isAckHandledManually: false,
  }));

describe('SharedHandlerMaps', () => {
  const direct = new Map([
    ['ping', handler()],
    ['subscribe', handler()],
    ['chat', handler()],
  ]);

  it('gives every connection with the same gateways one map, in binding order', () => {
    const maps = new SharedHandlerMaps();
    const first = maps.after(
      maps.after(undefined, mappings('ping', 'subscribe'), direct),
      mappings('chat'),
      direct,
    );
    const second = maps.after(
      maps.after(undefined, mappings('ping', 'subscribe'), direct),
      mappings('chat'),
      direct,
    );
    assert.equal(first, second);
    assert.deepEqual([...first.keys()], ['ping', 'subscribe', 'chat']);
    assert.equal(first.get('chat'), direct.get('chat'));
    assert.ok(maps.isShared(first));
  });

  it('keeps other gateway sequences apart and never changes a shared map', () => {
    const maps = new SharedHandlerMaps();
    const protocolOnly = maps.after(undefined, mappings('ping', 'subscribe'), direct);
    const withChat = maps.after(protocolOnly, mappings('chat'), direct);
    assert.notEqual(protocolOnly, withChat);
    assert.deepEqual([...protocolOnly.keys()], ['ping', 'subscribe']);
    assert.deepEqual([...maps.after(undefined, mappings('chat'), direct).keys()], ['chat']);
  });

  it('adds to a map a connection owns instead of sharing it', () => {
    const maps = new SharedHandlerMaps();
    const own = new Map([['upload', handler()]]);
    const result = maps.after(own, mappings('ping'), direct);
    assert.equal(result, own);
    assert.deepEqual([...own.keys()], ['upload', 'ping']);
    assert.equal(maps.isShared(own), false);
  });
});
