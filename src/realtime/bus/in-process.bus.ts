import type { OutboundMessage } from './delivery-target.js';
import { type LocalDeliver, RealtimeBus } from './realtime-bus.js';

/** The default bus: one process, so publishing is delivering. */
export class InProcessBus extends RealtimeBus {
  private deliver: LocalDeliver | undefined;

  publish(message: OutboundMessage): Promise<number> {
    return Promise.resolve(this.deliver ? this.deliver(message) : 0);
  }

  subscribe(deliver: LocalDeliver): void {
    this.deliver = deliver;
  }

  close(): Promise<void> {
    this.deliver = undefined;
    return Promise.resolve();
  }
}
