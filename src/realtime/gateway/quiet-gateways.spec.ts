import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type GatewayFacts, type ObservedCallback, quietCallbacks } from './quiet-gateways.js';

const bound = (messages: string[], direct = true): ObservedCallback => ({
  messages,
  direct,
  disconnects: 1,
});
const gateway = (messages: string[], hooked = false): GatewayFacts => ({ messages, hooked });

describe('quietCallbacks', () => {
  it('skips static, hookless gateways whose handlers are all direct', () => {
    const quiet = quietCallbacks(
      [bound(['a', 'b']), bound(['c'], false), bound([])],
      [gateway([]), gateway(['c']), gateway(['a', 'b'])],
    );
    assert.deepEqual(quiet, [['a', 'b'], undefined, []]);
  });

  it('keeps every callback up to the last one that may have hooks', () => {
    const quiet = quietCallbacks(
      [bound(['a']), bound(['h']), bound(['b'])],
      [gateway(['a']), gateway(['b']), gateway(['h'], true)],
    );
    assert.deepEqual(quiet, [undefined, undefined, ['b']]);
  });

  it('counts a callback it cannot match as hooked when a gateway left over has hooks', () => {
    const quiet = quietCallbacks(
      [bound(['a']), bound([]), bound([]), bound(['b'])],
      [gateway(['a']), gateway([], true), gateway([]), gateway(['b'])],
    );
    assert.deepEqual(quiet, [undefined, undefined, undefined, ['b']]);
  });

  it('runs every callback when the callbacks are not the gateways it found', () => {
    assert.deepEqual(quietCallbacks([bound(['a'])], [gateway(['a']), gateway(['b'])]), [undefined]);
  });

  it('runs a callback that bound twice, or asked for no disconnect listener', () => {
    const quiet = quietCallbacks(
      [
        { messages: undefined, direct: false, disconnects: 1 },
        { messages: ['b'], direct: true, disconnects: 0 },
      ],
      [gateway(['a']), gateway(['b'])],
    );
    assert.deepEqual(quiet, [undefined, undefined]);
  });

  it('runs callbacks whose types match more than one gateway', () => {
    const quiet = quietCallbacks([bound(['a']), bound(['a'])], [gateway(['a']), gateway(['a'])]);
    assert.deepEqual(quiet, [undefined, undefined]);
  });
});
