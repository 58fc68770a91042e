import assert from 'node:assert/strict';
import { TestClient } from './test-client.js';

/** Tracks the clients a test opens, so that each test ends with all of them closed. */
export interface ClientPool {
  /** Connects and waits for `connection.established`. */
  open(...args: Parameters<typeof TestClient.open>): Promise<TestClient>;
  /** Connects without waiting (for connections expected to be refused). */
  connect(...args: Parameters<typeof TestClient.connect>): TestClient;
  closeAll(): void;
}

export function clientPool(): ClientPool {
  const clients: TestClient[] = [];
  const connect = (...args: Parameters<typeof TestClient.connect>): TestClient => {
    const client = TestClient.connect(...args);
    clients.push(client);
    return client;
  };
  return {
    async open(...args) {
      const client = connect(...args);
      const first = await client.next();
      assert.equal(first.type, 'connection.established');
      return client;
    },
    connect,
    closeAll() {
      for (const client of clients.splice(0)) client.close();
    },
  };
}
