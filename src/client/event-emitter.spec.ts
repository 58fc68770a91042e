import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ListenerRegistry, type StoredListener } from './event-emitter.js';

function registry(): ListenerRegistry {
  return new ListenerRegistry((error) => {
    throw error;
  });
}

describe('ListenerRegistry', () => {
  it('off removes a once listener registered for two types, from each type', () => {
    const listeners = registry();
    let calls = 0;
    const fn = (() => calls++) as StoredListener;
    listeners.once('a', fn);
    listeners.once('b', fn);
    listeners.off('a', fn);
    listeners.off('b', fn);
    listeners.emit('a');
    listeners.emit('b');
    assert.equal(calls, 0);
    assert.equal(listeners.has('a') || listeners.has('b'), false);
  });

  it('a once listener for two types fires once per type', () => {
    const listeners = registry();
    const seen: string[] = [];
    const fn = ((type: string) => seen.push(type)) as unknown as StoredListener;
    listeners.once('a', fn);
    listeners.once('b', fn);
    for (const type of ['a', 'b', 'a', 'b']) listeners.emit(type, type);
    assert.deepEqual(seen, ['a', 'b']);
  });

  it('a once listener that fires leaves the same listener registered with on', () => {
    const listeners = registry();
    let calls = 0;
    const fn = (() => calls++) as StoredListener;
    listeners.on('a', fn);
    listeners.once('a', fn);
    listeners.emit('a');
    listeners.emit('a');
    assert.equal(calls, 3);
  });
});
