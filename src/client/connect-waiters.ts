import type { ConnectionEstablishedData } from '../protocol/index.js';
import type { RealtimeClientError } from './errors.js';

interface ConnectWaiter {
  resolve: (data: ConnectionEstablishedData) => void;
  reject: (error: RealtimeClientError) => void;
}

/** The `connect()` calls waiting for the connection to open, settled together. */
export class ConnectWaiters {
  private waiters: ConnectWaiter[] = [];

  wait(): Promise<ConnectionEstablishedData> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
  }

  resolveAll(data: ConnectionEstablishedData): void {
    for (const waiter of this.take()) waiter.resolve(data);
  }

  rejectAll(error: RealtimeClientError): void {
    for (const waiter of this.take()) waiter.reject(error);
  }

  /** Empties the list first, so that a waiter's reaction cannot add to the batch being settled. */
  private take(): ConnectWaiter[] {
    const waiters = this.waiters;
    this.waiters = [];
    return waiters;
  }
}
