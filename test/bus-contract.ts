import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import type {
  DeliveryTarget,
  LocalDeliver,
  OutboundMessage,
  RealtimeBus,
} from '../src/realtime/index.js';

/** Bound on any single publish, close or settle in the contract. */
export const CONTRACT_WAIT_MS = 10_000;

/** `promise`, or a failure naming `what` after `ms` (never a hang). */
export async function within<T>(
  promise: Promise<T>,
  what: string,
  ms = CONTRACT_WAIT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Type of the messages a {@link BusUnderTest.settle} sends; recorders leave them out. */
export const SETTLE_TYPE = 'contract.settle';

/** A message as RealtimeService would hand it to the bus: the frame is the whole envelope. */
export function outbound(
  type = 'contract.message',
  data: Record<string, unknown> = {},
  target: DeliveryTarget = { kind: 'all' },
): OutboundMessage {
  const id = randomUUID();
  const frame = JSON.stringify({ type, data, timestamp: new Date().toISOString(), id });
  return { id, type, target, frame };
}

/**
 * A LocalDeliver that records what it is given and returns `reached`. Settle markers are left out
 * and count 1, so that a settle can tell it really reached this LocalDeliver.
 */
export function recorder(reached: number | ((message: OutboundMessage) => number) = 1): {
  deliver: LocalDeliver;
  messages: OutboundMessage[];
} {
  const messages: OutboundMessage[] = [];
  return {
    messages,
    deliver: (message) => {
      if (message.type === SETTLE_TYPE) return 1;
      messages.push(structuredClone(message));
      return typeof reached === 'number' ? reached : reached(message);
    },
  };
}

/** A bus made for one test. */
export interface BusUnderTest {
  bus: RealtimeBus;
  /**
   * Resolves once everything `bus` published before the call has been handled wherever it could
   * arrive, `bus` itself included (an echo of its own publish): afterwards, "nothing more
   * arrived" holds without sleeping.
   */
  settle(): Promise<void>;
}

/** One kind of bus the contract runs against. */
export interface BusKind {
  name: string;
  /** Once before the suite (e.g. start a redis-server). */
  setup(): Promise<void>;
  /** False when the kind cannot run here: the test has been skipped, loudly. */
  available(t: TestContext): boolean;
  /** A fresh bus, isolated from every other test's buses, ready to publish. */
  create(): Promise<BusUnderTest>;
  /** Once after the suite: close what `create` made and stop what `setup` started. */
  teardown(): Promise<void>;
}

/**
 * What every RealtimeBus must do for RealtimeService and LocalDelivery, whatever carries the
 * messages (see src/realtime/bus/realtime-bus.ts).
 */
export function busContract(kind: BusKind): void {
  describe(`bus contract: ${kind.name}`, () => {
    const made: RealtimeBus[] = [];
    const create = async () => {
      const created = await kind.create();
      made.push(created.bus);
      return created;
    };

    before(() => kind.setup());
    afterEach(async () => {
      await within(Promise.all(made.splice(0).map((bus) => bus.close())), 'close() after a test');
    });
    after(() => kind.teardown());

    it('names itself: a non-empty instanceId, listed by liveInstances(), connected', async (t) => {
      if (!kind.available(t)) return;
      const { bus } = await create();
      assert.equal(typeof bus.instanceId, 'string');
      assert.ok(bus.instanceId.length > 0, 'instanceId is not empty');
      assert.ok(bus.liveInstances().includes(bus.instanceId), 'liveInstances() includes itself');
      assert.equal(bus.isConnected(), true);
    });

    it('publish delivers to the subscribed LocalDeliver exactly once and resolves to its count', async (t) => {
      if (!kind.available(t)) return;
      const { bus, settle } = await create();
      const counts = new Map<string, number>();
      const local = recorder((message) => counts.get(message.id) ?? -1);
      bus.subscribe(local.deliver);

      const messages = [0, 1, 5].map((n) => {
        const message = outbound('contract.count', { n }, { kind: 'users', userIds: ['u1'] });
        counts.set(message.id, n);
        return message;
      });
      for (const message of messages) {
        assert.equal(
          await within(bus.publish(message), 'publish'),
          counts.get(message.id),
          `publish resolves to what LocalDeliver returned (${counts.get(message.id)})`,
        );
      }
      await within(settle(), 'settle');
      assert.deepEqual(
        local.messages,
        messages,
        'each message reached LocalDeliver once, unchanged, in order',
      );
    });

    it('preserves order over 1000 publishes made back to back', async (t) => {
      if (!kind.available(t)) return;
      const { bus, settle } = await create();
      const local = recorder(1);
      bus.subscribe(local.deliver);

      const sent = Array.from({ length: 1000 }, (_, n) => outbound('contract.seq', { n }));
      // Not awaited one by one: the bus must keep call order on its own.
      const results = await within(
        Promise.all(sent.map((message) => bus.publish(message))),
        '1000 publishes',
      );
      assert.deepEqual(
        results,
        sent.map(() => 1),
        'every publish resolves to 1',
      );
      await within(settle(), 'settle');
      assert.equal(local.messages.length, 1000, 'each delivered exactly once');
      assert.deepEqual(
        local.messages.map((m) => JSON.parse(m.frame).data.n),
        sent.map((_, n) => n),
        'delivered in publish order',
      );
    });

    it('request() of a topic no other instance handles: no answers, every other one unreachable', async (t) => {
      if (!kind.available(t)) return;
      const { bus } = await create();
      bus.subscribe(recorder(1).deliver);
      // Whether the others cannot be asked or answer with an error, none of them said "no".
      const others = bus.liveInstances().filter((id) => id !== bus.instanceId);
      const asked = await within(bus.request('contract.unhandled', {}), 'request');
      assert.deepEqual(asked.answers, []);
      assert.deepEqual([...asked.unreachable].sort(), others.sort());
      assert.equal(asked.degraded, false);
    });

    it('close() is idempotent: twice in a row and twice at once both resolve', async (t) => {
      if (!kind.available(t)) return;
      const first = (await create()).bus;
      await within(first.close(), 'first close()');
      await within(first.close(), 'second close()');
      const second = (await create()).bus;
      await within(Promise.all([second.close(), second.close()]), 'two concurrent close()');
      await within(second.close(), 'close() after that');
    });

    it('after close(), publish resolves 0 and reaches no LocalDeliver', async (t) => {
      if (!kind.available(t)) return;
      const { bus } = await create();
      const local = recorder(1);
      bus.subscribe(local.deliver);
      await within(bus.publish(outbound('contract.before-close')), 'publish before close');
      await within(bus.close(), 'close()');

      const results = await within(
        Promise.allSettled([
          bus.publish(outbound('contract.after-close')),
          bus.publish(outbound()),
        ]),
        'publish after close',
      );
      assert.deepEqual(
        results,
        [
          { status: 'fulfilled', value: 0 },
          { status: 'fulfilled', value: 0 },
        ],
        'publish after close() resolves 0',
      );
      // LocalDeliver runs inside publish, and a closed bus listens to nothing more.
      assert.deepEqual(
        local.messages.map((m) => m.type),
        ['contract.before-close'],
        'nothing published after close() was delivered',
      );
    });
  });
}
