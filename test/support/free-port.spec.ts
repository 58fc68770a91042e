import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ephemeralLow, freePort, listenOnce } from './free-port.js';

describe('freePort', () => {
  it('answers ports a server can listen on, below the ephemeral range where Linux tells it', async () => {
    const low = ephemeralLow();
    for (let i = 0; i < 10; i++) {
      const port = await freePort();
      assert.ok(Number.isInteger(port) && port > 0 && port < 65_536, `port ${port}`);
      if (low !== undefined && low > 11_000) assert.ok(port < low, `${port} is below ${low}`);
      assert.equal(await listenOnce(port), port, `port ${port} can be listened on`);
    }
  });
});
