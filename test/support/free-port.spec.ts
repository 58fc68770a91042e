import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { freePort } from './free-port.js';

function listen(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

describe('freePort', () => {
  it('answers ports a server can listen on, below the ephemeral range where Linux tells it', async () => {
    let low: number | undefined;
    try {
      low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
    } catch {
      low = undefined;
    }
    for (let i = 0; i < 10; i++) {
      const port = await freePort();
      assert.ok(Number.isInteger(port) && port > 0 && port < 65_536, `port ${port}`);
      if (low !== undefined && low > 11_000) assert.ok(port < low, `${port} is below ${low}`);
      await listen(port);
    }
  });
});
