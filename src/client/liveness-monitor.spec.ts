import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionLimits } from '../protocol/index.js';
import { livenessTimings } from './liveness-monitor.js';

const limits = (heartbeat: number, timeout: number) =>
  ({ heartbeat_interval: heartbeat, connection_timeout: timeout }) as ConnectionLimits;

describe('livenessTimings (server-announced heartbeat limits)', () => {
  it('uses sane values as announced', () => {
    assert.deepEqual(livenessTimings(limits(30, 60)), { intervalMs: 30_000, timeoutMs: 60_000 });
  });

  it('falls back to the defaults when the limits are missing or unusable', () => {
    assert.deepEqual(livenessTimings(undefined), { intervalMs: 30_000, timeoutMs: 60_000 });
    assert.deepEqual(livenessTimings(limits(-1, Number.NaN)), {
      intervalMs: 30_000,
      timeoutMs: 60_000,
    });
  });

  it('keeps the interval within 1 s .. 10 min, whatever the server says', () => {
    assert.equal(livenessTimings(limits(0.001, 60)).intervalMs, 1000);
    assert.equal(livenessTimings(limits(3e6, 1e9)).intervalMs, 600_000);
    // 2^31 ms and more would overflow setInterval to a 1 ms period.
    assert.equal(livenessTimings(limits(2 ** 31 / 1000, 1e9)).intervalMs, 600_000);
  });

  it('keeps the timeout at least two intervals (a ping gets a tick to be answered)', () => {
    assert.equal(livenessTimings(limits(30, 1)).timeoutMs, 60_000);
    assert.equal(livenessTimings(limits(0.2, 1)).timeoutMs, 2000);
    assert.equal(livenessTimings(limits(30, 1e9)).timeoutMs, 1_200_000);
  });
});
