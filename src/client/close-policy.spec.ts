import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloseCode } from '../protocol/index.js';
import { closeDecision, type CloseDecision } from './close-policy.js';

/** Every protocol close code (PROTOCOL.md section 2) plus the ones browsers report locally. */
const EXPECTED: Record<number, CloseDecision> = {
  1000: 'stop',
  1001: 'reconnect',
  1002: 'reconnect',
  1005: 'reconnect',
  1006: 'reconnect',
  1007: 'reconnect',
  1008: 'reconnect',
  1009: 'reconnect',
  1011: 'reconnect',
  1013: 'reconnect',
  4000: 'reconnect',
  4001: 'reconnect-with-new-token',
  4003: 'stop',
  4004: 'stop',
  4008: 'stop',
  4010: 'reconnect',
  4999: 'reconnect',
};

describe('closeDecision', () => {
  it('covers every close code of the protocol', () => {
    for (const code of Object.values(CloseCode)) {
      assert.ok(code in EXPECTED, `close code ${code} has no expectation`);
    }
  });

  for (const [code, decision] of Object.entries(EXPECTED)) {
    it(`${code} -> ${decision}`, () => {
      assert.equal(closeDecision(Number(code)), decision);
    });
  }
});
