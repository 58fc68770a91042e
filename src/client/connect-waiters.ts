import type { ConnectionEstablishedData } from '../protocol/index.js';
import type { RealtimeClientError } from './errors.js';

interface PendingConnect {
  promise: Promise<ConnectionEstablishedData>;
  resolve: (data: ConnectionEstablishedData) => void;
  reject: (error: RealtimeClientError) => void;
}

/**
 * The `connect()` calls waiting for the connection to open. They share one promise, so that
 * calls made during a long outage (a retry loop, many callers) keep nothing each: one waiter
 * however many calls wait for it.
 */
export class ConnectWaiters {
  private pending: PendingConnect | undefined;

  wait(): Promise<ConnectionEstablishedData> {
    if (this.pending) return this.pending.promise;
    let resolve!: PendingConnect['resolve'];
    let reject!: PendingConnect['reject'];
    const promise = new Promise<ConnectionEstablishedData>((settle, fail) => {
      resolve = settle;
      reject = fail;
    });
    this.pending = { promise, resolve, reject };
    return promise;
  }

  resolveAll(data: ConnectionEstablishedData): void {
    this.take()?.resolve(data);
  }

  rejectAll(error: RealtimeClientError): void {
    this.take()?.reject(error);
  }

  /** Forgets the promise first, so that a `connect()` from a reaction starts a new one. */
  private take(): PendingConnect | undefined {
    const pending = this.pending;
    this.pending = undefined;
    return pending;
  }
}
