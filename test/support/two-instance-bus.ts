import type { ClusterAnswers, ClusterChange, RealtimeBus } from '../../src/realtime/index.js';

/** A request the bus was asked to make. */
export interface SentRequest {
  topic: string;
  payload: unknown;
  to: string | undefined;
}

/**
 * For specs: a bus of two connected instances, this one (`here`) and `there`, which answers each
 * request with `answerOf(topic)`, or, when that is undefined, leaves it unanswered past the
 * timeout (as a busy instance, or one whose path to Redis stalled, would). The e2e tests cover the
 * real bus and real cuts; this one lets minutes of retries be timed on mocked timers.
 */
export function twoInstanceBus(answerOf: (topic: string) => unknown): {
  bus: RealtimeBus;
  sent: SentRequest[];
  /** Tells the bus's listeners of a cluster change. */
  change: (change: ClusterChange) => void;
} {
  const sent: SentRequest[] = [];
  const listeners: ((change: ClusterChange) => void)[] = [];
  const bus = {
    instanceId: 'here',
    handle: () => undefined,
    liveInstances: () => ['here', 'there'],
    isConnected: () => true,
    onClusterChange: (listener: (change: ClusterChange) => void) => listeners.push(listener),
    request: (
      topic: string,
      payload: unknown,
      options?: { to?: string },
    ): Promise<ClusterAnswers> => {
      sent.push({ topic, payload, to: options?.to });
      const answer = answerOf(topic);
      return Promise.resolve(
        answer === undefined
          ? { answers: [], unreachable: ['there'], degraded: false }
          : { answers: [{ instanceId: 'there', answer }], unreachable: [], degraded: false },
      );
    },
  } as unknown as RealtimeBus;
  return {
    bus,
    sent,
    change: (change) => listeners.forEach((listener) => listener(change)),
  };
}
