import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PassDurations } from './pass-durations.js';

describe('PassDurations', () => {
  it('predicts a pass of a target at a C it ran at from its slowest pass there', () => {
    const durations = new PassDurations();
    durations.record('module', 1000, 33_000);
    durations.record('module', 5000, 37_000);
    durations.record('module', 5000, 32_000);
    assert.equal(durations.ms('module', 5000), 37_000);
    assert.equal(durations.ms('module', 1000), 33_000);
  });

  it('scales a new C from that target’s slowest pass per client, then from any target’s', () => {
    const durations = new PassDurations();
    durations.record('raw-ws', 1000, 6_000);
    durations.record('module', 1000, 20_000);
    assert.equal(durations.ms('raw-ws', 5000), 30_000);
    assert.equal(durations.ms('module', 5000), 100_000);
    assert.equal(durations.ms('socketio', 5000), 100_000);
  });

  it('predicts nothing before any pass ran', () => {
    assert.equal(new PassDurations().ms('module', 1000), 0);
  });
});
