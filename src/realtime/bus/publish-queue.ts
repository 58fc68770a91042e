/**
 * Publishes in order, keeping those made while Redis is unreachable (at most `limit`) and
 * sending them, still in order, once it is back.
 */
export class PublishQueue {
  private readonly pending: string[] = [];
  private flushing = false;

  constructor(
    private readonly send: (payload: string) => Promise<unknown>,
    private readonly limit: number,
  ) {}

  get size(): number {
    return this.pending.length;
  }

  /** False when a publish could be neither sent now nor kept. */
  canAccept(connected: boolean): boolean {
    return (connected && this.pending.length === 0) || this.pending.length < this.limit;
  }

  /** Sends now when nothing is waiting, else queues behind what is. */
  push(payload: string, connected: boolean): void {
    if (!connected || this.pending.length > 0 || this.flushing) {
      this.pending.push(payload);
      return;
    }
    // Sent in call order on one connection; one that fails is kept, in order, for the flush.
    this.send(payload).catch(() => this.pending.push(payload));
  }

  /** Sends what was kept, oldest first; stops at the first failure and keeps the rest. */
  async flush(): Promise<number> {
    if (this.flushing) return 0;
    this.flushing = true;
    let sent = 0;
    try {
      while (this.pending.length > 0) {
        await this.send(this.pending[0]!);
        this.pending.shift();
        sent++;
      }
    } catch {
      // Redis went away again: the rest waits for the next flush.
    } finally {
      this.flushing = false;
    }
    return sent;
  }
}
