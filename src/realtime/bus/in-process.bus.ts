import { randomUUID } from 'node:crypto';
import type { OutboundMessage } from './delivery-target.js';
import { type ClusterAnswers, type LocalDeliver, RealtimeBus } from './realtime-bus.js';

/** The default bus: one process, so publishing is delivering and there is nobody to ask. */
export class InProcessBus extends RealtimeBus {
  readonly instanceId = randomUUID();
  private deliver: LocalDeliver | undefined;

  publish(message: OutboundMessage): Promise<number> {
    // Behind the stream copies still being appended, if any: delivered in the order issued.
    if (!this.sendOrder.idle) return this.sendOrder.after(() => this.deliverHere(message));
    return Promise.resolve(this.deliverHere(message));
  }

  protected override publishPositioned(message: OutboundMessage): Promise<number> {
    return Promise.resolve(this.deliverHere(message));
  }

  private deliverHere(message: OutboundMessage): number {
    return this.deliver ? this.deliver(message) : 0;
  }

  subscribe(deliver: LocalDeliver): void {
    this.deliver = deliver;
  }

  request<T>(): Promise<ClusterAnswers<T>> {
    return Promise.resolve({ answers: [], unreachable: [], degraded: false });
  }

  handle(): void {}

  onClusterChange(): void {}

  liveInstances(): string[] {
    return [this.instanceId];
  }

  isConnected(): boolean {
    return true;
  }

  close(): Promise<void> {
    this.deliver = undefined;
    return Promise.resolve();
  }
}
