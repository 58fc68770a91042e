import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { MessageHistory } from '../recovery/message-history.js';
import type { RedisMessageHistory } from '../recovery/redis-message-history.js';
import { RealtimeSendError } from '../realtime-send.error.js';
import { type ClusterEnvelope, parseClusterEnvelope } from './cluster-envelope.js';
import type { DeliveryTarget, OutboundMessage } from './delivery-target.js';
import { InboundHold } from './inbound-hold.js';
import type { ReconnectTogether } from './reconnect-together.js';
import { PublishQueue } from './publish-queue.js';
import { RefusedPublishRetry } from './refused-publish-retry.js';
import {
  type ClusterAnswers,
  type ClusterChange,
  type LocalDeliver,
  historyRecord,
  RealtimeBus,
  type RequestHandler,
  type StreamCopy,
  type RequestOptions,
} from './realtime-bus.js';
import { SerialRuns } from '../serial-runs.js';
import { RetryBackoff } from '../retry-backoff.js';
import { RecentIds } from './recent-ids.js';
import { FAIL_FAST, RESUBSCRIBING } from './redis-connections.js';
import {
  leaseKey,
  REDIS_BUS_DEFAULTS,
  type RedisBusOptions,
  redisBusOptionsProblem,
} from './redis-bus-options.js';

interface PendingRequest {
  waiting: Set<string>;
  answers: Array<{ instanceId: string; answer: unknown }>;
  /** Instances asked that answered with an error: reported unreachable, as having no answer. */
  failed: string[];
  until: ((answer: unknown) => boolean) | undefined;
  done: () => void;
}

interface PendingCount {
  waiting: Set<string>;
  reached: number;
  done: (reached: number) => void;
}

// Renews this instance's lease with Redis's clock (no skew between machines) and returns the
// instances whose lease is current, those whose lease this call found ended (atomically, so each
// ended instance is reported to one caller only), and 1 when this instance's own lease was not
// there any more (another instance reaped it, and its presence with it).
const RENEW_LEASE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return { redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf'), gone, added }`;

/** Characters of a payload that failed to be handled, logged to tell where it came from. */
const LOGGED_PAYLOAD_CHARS = 80;

/**
 * Largest message from the channel that is parsed, in characters (each at least one byte). The
 * instances' own are a frame (maxMessageSize, 64 KiB by default) with its recipients, or an admin
 * answer; Redis may be shared, and another publisher's larger one would be parsed whole.
 */
export const MAX_ENVELOPE_CHARS = 16 * 1024 * 1024;

/** A publish that waits for Redis: an envelope, or a stream send to append and publish then. */
type QueuedPublish =
  | { payload: string }
  | { message: OutboundMessage; copies: ReadonlyArray<StreamCopy & { ack?: string }> };

/** Messages held while a gap in what this instance received is filled (see {@link GapRecovery}). */
const MAX_HELD = 100_000;
/** Characters of their frames held at most: about 64 MiB of ASCII JSON. */
const MAX_HELD_CHARS = 64 * 1024 * 1024;
/**
 * The first pause before trying a failed gap recovery again, ms; it doubles with each of the
 * RETRIES retries (about 16 s in all), after which the gap is given up (see {@link GapRecovery}).
 */
const RECOVERY_RETRY_FIRST_MS = 250;

/**
 * Fills what this instance missed while its subscription was down (section 9, from the shared
 * history), before the messages that arrived since are delivered.
 */
export interface GapRecovery {
  /**
   * Called on every (re)subscription; `afterGap` when messages may have been missed. Messages
   * arriving meanwhile are held, and delivered when it resolves; when it throws it is tried
   * again, with what arrives still held, until its retries are spent.
   */
  recover(afterGap: boolean): Promise<void>;
  /** More messages arrived during a recovery than could be held: some were dropped. */
  overflowed(): void;
  /**
   * The recovery kept failing (Redis refusing the history's reads): what was held has just been
   * delivered, and what was missed before it will not be. `positionKept`: a message from the
   * bus was among those delivered, so the next gap starts after it.
   */
  abandoned(positionKept: boolean): void;
}

/**
 * Carries sends between instances over Redis pub/sub. A send without a stream is delivered to
 * this instance's connections first, then published; the others deliver it to theirs and report
 * how many they reached. A send in a stream (section 9) is appended to the shared history and
 * published in one script, and every instance (this one too) delivers it as it comes back from
 * Redis, so that each stream reaches every client in offset order. While Redis is unreachable,
 * sends are delivered locally (without a position) and publishes wait in a bounded queue that is
 * flushed in order on reconnect.
 */
export class RedisBus extends RealtimeBus {
  readonly instanceId: string;
  private readonly logger = new Logger('RealtimeRedisBus');
  private readonly options: Required<Omit<RedisBusOptions, 'url' | 'clients' | 'instanceId'>>;
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly ownsClients: boolean;
  private readonly channel: string;
  private readonly inbox: string;
  private readonly instancesKey: string;
  private readonly queue: PublishQueue<QueuedPublish>;
  private readonly refusedPublishes: RefusedPublishRetry<QueuedPublish>;
  private readonly recent = new RecentIds(8192);
  private readonly counts = new Map<string, PendingCount>();
  private readonly requests = new Map<string, PendingRequest>();
  private readonly handlers = new Map<string, RequestHandler>();
  private readonly changeListeners: Array<(change: ClusterChange) => void> = [];
  /** Peers that missed a count: not waited for until they are heard from again. */
  private readonly silent = new Set<string>();
  private peers: string[] = [];
  private deliver: LocalDeliver | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private up = false;
  /**
   * This instance's lease was renewed since it last connected, or a renewal failed after the
   * reconnection's resync: a lease found gone then had lapsed since that resync.
   */
  private leased = false;
  /** A lapsed lease was found: resync presence once more at the next renewal (see renewLease). */
  private resyncAgain = false;
  /** Peers that announced themselves since this instance last reconnected. */
  private readonly rejoined = new Set<string>();
  private onRejoin: (() => void) | undefined;
  private everConnected = false;
  private closed = false;
  private history: RedisMessageHistory | undefined;
  private gapRecovery: GapRecovery | undefined;
  private readonly hold = new InboundHold(MAX_HELD, MAX_HELD_CHARS);
  /**
   * Local counts of this instance's stream sends, settled when they come back from Redis; a send
   * that failed settles with `decided` false: its fallback releases its place in the send order.
   */
  private readonly echoes = new Map<string, (reached: number, decided?: boolean) => void>();
  /** Stream sends delivered here before publishing (during an outage): not delivered again. */
  private readonly deliveredFirst: RecentIds;
  private readonly marks = new Map<string, () => void>();
  /** Keys of what the current recovery delivered from the history. */
  private readonly recovered = new Set<string>();
  private subscribedOnce = false;
  /** The subscription dropped while publishing stayed up: its return is told (resubscribed). */
  private subscriptionLost = false;
  /** One recovery at a time; a resubscription during one runs another after it. */
  private readonly gapRecoveries = new SerialRuns(() => this.recoverGap());
  /** Retries of a failed recovery while the subscription is up (Redis may be coming back). */
  private readonly recoveryRetries = new RetryBackoff(() => {
    if (this.subscriber.status === 'ready' && this.hold.holding) this.gapRecoveries.request();
  }, RECOVERY_RETRY_FIRST_MS);
  /** Settles when every stream send made so far was published (and came back) or fell back. */
  private decided: Promise<void> = Promise.resolve();
  /** Stream sends waiting for their turn to be delivered here and queued (see queueInOrder). */
  private joiningQueue = 0;

  /** `reconnects`: given by the module (see ReconnectTogether); a bus made by the host has none. */
  constructor(options: RedisBusOptions, reconnects?: ReconnectTogether) {
    super();
    if (!options.url && !options.clients) {
      throw new Error(
        'RedisBus: give a redis:// url or your own { publisher, subscriber } clients',
      );
    }
    // A bus the host builds (the `bus` option) gets the checks the `redis` option gets.
    const problem = redisBusOptionsProblem(options, '');
    if (problem) throw new Error(`RedisBus: ${problem}`);
    this.instanceId = options.instanceId ?? randomUUID();
    this.options = {
      namespace: options.namespace ?? REDIS_BUS_DEFAULTS.namespace,
      leaseMs: options.leaseMs ?? REDIS_BUS_DEFAULTS.leaseMs,
      requestTimeoutMs: options.requestTimeoutMs ?? REDIS_BUS_DEFAULTS.requestTimeoutMs,
      maxBufferedPublishes: options.maxBufferedPublishes ?? REDIS_BUS_DEFAULTS.maxBufferedPublishes,
    };
    const ns = this.options.namespace;
    this.channel = `${ns}:bus`;
    this.inbox = `${ns}:instance:${this.instanceId}`;
    this.instancesKey = leaseKey(ns);
    this.ownsClients = !options.clients;
    this.publisher = options.clients?.publisher ?? new Redis(options.url!, FAIL_FAST);
    this.subscriber = options.clients?.subscriber ?? new Redis(options.url!, RESUBSCRIBING);
    for (const connection of [this.publisher, this.subscriber]) {
      if (this.ownsClients) reconnects?.add(connection);
      else reconnects?.watch(connection);
    }
    this.queue = new PublishQueue<QueuedPublish>(
      (item) => this.sendQueued(item),
      this.options.maxBufferedPublishes,
      {
        // What waited behind a full window of publishes in flight goes out once they are confirmed.
        drained: () => {
          if (this.up) void this.queue.flush();
        },
        failed: (error) => this.refusedPublishes.failed(error),
      },
    );
    this.refusedPublishes = new RefusedPublishRetry(
      this.queue,
      () => this.up && !this.closed,
      this.logger,
      describeQueued,
    );
    this.deliveredFirst = new RecentIds(Math.max(8192, 4 * this.options.maxBufferedPublishes));
    this.start();
  }

  /** True while both connections to Redis are usable. */
  isConnected(): boolean {
    return this.up && this.subscriber.status === 'ready';
  }

  /** Instances whose lease is current, this one included. */
  liveInstances(): string[] {
    return [this.instanceId, ...this.peers];
  }

  subscribe(deliver: LocalDeliver): void {
    this.deliver = deliver;
  }

  /** Stream sends go through `history` with their position published in the same script. */
  useHistory(history: RedisMessageHistory, recovery: GapRecovery): void {
    this.history = history;
    this.gapRecovery = recovery;
    if (this.subscriber.status === 'ready' && this.subscribedOnce) this.gapRecoveries.request();
    // The history's connection may be back after the subscription: a recovery that failed for
    // want of it runs again now, not at its next retry (up to seconds of held messages later).
    history.onReady(() => {
      if (this.subscriber.status === 'ready' && this.hold.holding) this.gapRecoveries.request();
    });
  }

  override async publishInStreams(
    message: OutboundMessage,
    copies: readonly StreamCopy[],
    history: MessageHistory,
  ): Promise<number> {
    if (history !== this.history || this.closed) {
      return super.publishInStreams(message, copies, history);
    }
    // In an outage, while what waited for it still goes out, or while Redis is slow to confirm
    // what is in flight: delivered here first, published later, once and without positions, like
    // any send then (a resume cannot bring it back).
    if (!this.queue.canSendNow(this.up)) return this.queueInOrder(message, copies);
    const counts = await Promise.all(
      copies.map(({ stream, target }) => this.publishCopy({ ...message, target }, stream)),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /**
   * Goes the outage way once the sends before it are decided. Refused at once when the queue and
   * the sends already waiting to join it fill maxBufferedPublishes: behind a slow Redis, they
   * would otherwise pile up for as long as it is slow.
   */
  private queueInOrder(message: OutboundMessage, copies: readonly StreamCopy[]): Promise<number> {
    if (this.queue.size + this.joiningQueue >= this.options.maxBufferedPublishes) {
      return Promise.reject(this.busUnavailable(this.queue.size + this.joiningQueue));
    }
    this.joiningQueue++;
    const delivered = this.sendOrder.begin();
    return this.inOrder(() => {
      this.joiningQueue--;
      try {
        return this.publishLocalFirst(message, copies);
      } finally {
        delivered();
      }
    });
  }

  /**
   * Runs `fallback` once every send made before has been published (and delivered here) or has
   * fallen back itself: scripts in flight fail in no particular order when the connection drops,
   * and the sends that then go the outage way must keep the order they were made in.
   */
  private inOrder(
    fallback: () => Promise<number>,
    sent?: { outcome: Promise<boolean>; counted: Promise<number> },
  ): Promise<number> {
    let result: Promise<number> | undefined;
    const decided = this.decided
      .then(() => sent?.outcome ?? false)
      .then((published) => {
        if (published) return;
        // Its effects (local delivery, the queue) happen now, in order; its count is awaited apart.
        result = fallback();
        result.catch(() => undefined);
      });
    this.decided = decided;
    return decided.then(() => result ?? sent!.counted);
  }

  /** Appends one stream's copy to the history and publishes it with its position, at once. */
  private async publishCopy(message: OutboundMessage, stream: string): Promise<number> {
    const key = deliveryKey(message);
    const connected = this.isConnected();
    const waitFor = connected ? this.peers.filter((peer) => !this.silent.has(peer)) : [];
    const ack = waitFor.length > 0 ? randomUUID() : undefined;
    const remote = ack ? this.countReplies(ack, waitFor) : undefined;
    // The sends issued after it are delivered here once it came back (or fell back, or timed out).
    const delivered = this.sendOrder.begin();
    // Without the subscription, it reaches this instance's clients when the gap is filled.
    const local = connected ? this.awaitEcho(key, delivered) : undefined;
    // Counted in the window of the plain publishes, so that a slow Redis holds a bounded number.
    const sent = this.queue.sendCounted(() => this.appendAndPublish(message, stream, ack));
    const outcome = sent.then(
      // Decided once it came back here too: the script's reply comes before the message does on
      // the subscription, and a later send that goes the outage way would be delivered here first.
      () => (local ? local.then(() => true) : true),
      () => {
        // Redis went away: the script may or may not have run; receivers drop a second copy.
        this.echoes.get(key)?.(0, false);
        if (ack) this.counts.get(ack)?.done(0);
        return false;
      },
    );
    // Published without the subscription: not waited for here (the gap recovery delivers it).
    void outcome.then((published) => published && delivered());
    const counted = (async () => (local ? await local : 0) + (remote ? await remote : 0))();
    const copy = [{ stream, target: message.target }];
    const fallback = () => {
      try {
        return this.publishLocalFirst(message, copy);
      } finally {
        delivered();
      }
    };
    return this.inOrder(fallback, { outcome, counted });
  }

  /** Resolves once everything published before this call has come back from Redis; false if not in time. */
  async barrier(): Promise<boolean> {
    if (this.closed || !this.isConnected()) return false;
    const id = randomUUID();
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.marks.delete(id);
        resolve(false);
      }, this.options.requestTimeoutMs);
      timer.unref();
      this.marks.set(id, () => {
        clearTimeout(timer);
        this.marks.delete(id);
        resolve(true);
      });
    });
    const mark = this.encode({ kind: 'mark', origin: this.instanceId, id });
    this.publisher.publish(this.inbox, mark).catch(() => this.marks.get(id)?.());
    return arrived;
  }

  /**
   * A message the recovery delivered from the history: a copy of it that arrives (or was held)
   * later, for example published again after a lost reply, is not delivered again.
   */
  /** True when this copy of a message was delivered here already (live, or before publishing). */
  delivered(message: OutboundMessage): boolean {
    const key = deliveryKey(message);
    return this.recent.has(key) || this.deliveredFirst.has(key);
  }

  noteRecovered(message: OutboundMessage, reached: number): void {
    const key = deliveryKey(message);
    this.recent.add(key);
    this.recovered.add(key);
    this.echoes.get(key)?.(reached);
  }

  /** The first offset per stream among the messages held during a recovery. */
  heldFirstOffsets(): Map<string, string> {
    return this.hold.firstOffsets();
  }

  async publish(message: OutboundMessage): Promise<number> {
    return this.publishLocalFirst(message, undefined, true);
  }

  /** A stream copy of the generic path (another history): in its turn already. */
  protected override publishPositioned(message: OutboundMessage): Promise<number> {
    return this.publishLocalFirst(message);
  }

  /** One script: the copy goes into its stream's history and out on the channel, positioned. */
  private appendAndPublish(
    message: OutboundMessage,
    stream: string,
    ack?: string,
  ): Promise<unknown> {
    const envelope = this.encode({ kind: 'deliver', origin: this.instanceId, ack, message });
    return this.history!.appendAndPublish(
      stream,
      historyRecord(message),
      { channel: this.channel, head: `${envelope.slice(0, -2)},"position":`, tail: '}}' },
      this.publisher,
    );
  }

  /**
   * What waited for Redis goes out in order. A stream send goes into the history then, so that an
   * instance that was not subscribed yet when it went out still finds it there.
   */
  private async sendQueued(item: QueuedPublish): Promise<void> {
    if ('payload' in item) {
      await this.publisher.publish(this.channel, item.payload);
      return;
    }
    for (const { stream, target, ack } of item.copies) {
      await this.appendAndPublish({ ...item.message, target }, stream, ack);
    }
  }

  /**
   * Delivers here at once, then publishes (now, or queued while Redis is unreachable). `copies`:
   * a stream send, which is queued to go into the history when Redis is back; its count is the
   * local one. `ordered`: a send without a stream, delivered here after this instance's stream
   * sends issued before it (published now all the same: the channel keeps their order).
   */
  private async publishLocalFirst(
    message: OutboundMessage,
    copies?: readonly StreamCopy[],
    ordered = false,
  ): Promise<number> {
    if (this.closed) return 0;
    // Publishing needs only the publisher; counting answers needs the subscriber too.
    const canPublish = this.up;
    const connected = this.isConnected();
    if (!this.queue.canAccept(canPublish)) throw this.busUnavailable(this.queue.size);
    const local =
      ordered && !this.sendOrder.idle
        ? this.sendOrder.after(() => (this.deliver ? this.deliver(message) : 0))
        : this.deliver
          ? this.deliver(message)
          : 0;
    const waitFor = connected ? this.peers.filter((peer) => !this.silent.has(peer)) : [];
    if (copies) {
      // Its copies come back from Redis later, positioned: not delivered here twice.
      for (const { target } of copies) this.deliveredFirst.add(deliveryKey({ ...message, target }));
      const acked = copies.map((copy) => ({
        ...copy,
        ack: waitFor.length > 0 ? randomUUID() : undefined,
      }));
      const remote = acked.map(({ ack }) => (ack ? this.countReplies(ack, waitFor) : 0));
      this.queue.push({ message, copies: acked }, canPublish);
      // Never held (`ordered` is for sends without a stream): a number.
      const here = typeof local === 'number' ? local : await local;
      return (await Promise.all(remote)).reduce((sum, count) => sum + count, here);
    }
    const ack = waitFor.length > 0 ? randomUUID() : undefined;
    const remote = ack ? this.countReplies(ack, waitFor) : undefined;
    const payload = this.encode({ kind: 'deliver', origin: this.instanceId, ack, message });
    this.queue.push({ payload }, canPublish);
    if (typeof local !== 'number') return (await local) + (remote ? await remote : 0);
    return local + (remote ? await remote : 0);
  }

  private busUnavailable(waiting: number): RealtimeSendError {
    return new RealtimeSendError(
      'BUS_UNAVAILABLE',
      `Redis is unreachable or slow and ${waiting} publishes are already waiting; the message was not sent`,
    );
  }

  onClusterChange(listener: (change: ClusterChange) => void): void {
    this.changeListeners.push(listener);
  }

  private emitChange(change: ClusterChange): void {
    for (const listener of this.changeListeners) listener(change);
  }

  handle(topic: string, handler: RequestHandler): void {
    this.handlers.set(topic, handler);
  }

  async request<T>(
    topic: string,
    payload: unknown,
    options: RequestOptions<T> = {},
  ): Promise<ClusterAnswers<T>> {
    const { to, until } = options;
    const targets = to === undefined ? [...this.peers] : this.peers.filter((peer) => peer === to);
    if (this.closed || !this.isConnected()) {
      return { answers: [], unreachable: targets, degraded: true };
    }
    if (targets.length === 0) return { answers: [], unreachable: [], degraded: false };
    const id = randomUUID();
    const pending: PendingRequest = {
      waiting: new Set(targets),
      answers: [],
      failed: [],
      until: until as ((answer: unknown) => boolean) | undefined,
      done: () => undefined,
    };
    const finished = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.options.requestTimeoutMs);
      timer.unref();
      pending.done = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.requests.set(id, pending);
    const channel = to === undefined ? this.channel : this.inboxOf(to);
    const envelope: ClusterEnvelope = {
      kind: 'request',
      origin: this.instanceId,
      id,
      topic,
      payload,
    };
    this.publisher.publish(channel, this.encode(envelope)).catch(() => pending.done());
    await finished;
    this.requests.delete(id);
    return {
      answers: pending.answers as Array<{ instanceId: string; answer: T }>,
      unreachable: [...pending.failed, ...pending.waiting],
      degraded: false,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.refusedPublishes.stop();
    clearInterval(this.leaseTimer);
    this.recoveryRetries.stop();
    for (const pending of this.counts.values()) pending.done(pending.reached);
    this.counts.clear();
    for (const pending of this.requests.values()) pending.done();
    for (const settle of [...this.echoes.values()]) settle(0);
    for (const arrived of [...this.marks.values()]) arrived();
    this.hold.release();
    if (this.isConnected()) {
      // Others stop waiting for this instance at once, rather than after its lease.
      await bounded(
        Promise.all([
          this.publisher.publish(
            this.channel,
            this.encode({ kind: 'leave', origin: this.instanceId }),
          ),
          this.publisher.zrem(this.instancesKey, this.instanceId),
        ]),
        1000,
      );
    }
    this.subscriber.off('message', this.onMessage);
    if (this.ownsClients) {
      this.publisher.disconnect();
      this.subscriber.disconnect();
    } else {
      await bounded(this.subscriber.unsubscribe(this.channel, this.inbox), 1000);
    }
  }

  private start(): void {
    this.subscriber.on('message', this.onMessage);
    this.subscriber.on('error', this.onClientError);
    this.publisher.on('error', this.onClientError);
    this.publisher.on('ready', () => void this.onReady());
    // A subscriber that reconnects alone also ends the outage for what waits in the queue.
    this.subscriber.on('ready', () => void this.onSubscriberReady());
    this.publisher.on('close', () => this.onDown());
    // What is published from now until the subscription is back is missed: hold what comes
    // after it until the gap is filled from the history.
    this.subscriber.on('close', () => {
      if (!this.subscribedOnce || this.closed) return;
      if (this.history) this.hold.start();
      // With the publisher down as well, the 'reconnected' that ends the outage covers this.
      if (this.up) this.subscriptionLost = true;
    });
    this.subscriber.subscribe(this.channel, this.inbox).catch((error: unknown) => {
      this.logger.error({ event: 'bus.subscribe_failed', error: String(error) });
    });
    this.leaseTimer = setInterval(
      () => void this.renewLease(),
      Math.ceil(this.options.leaseMs / 3),
    );
    this.leaseTimer.unref();
    if (this.publisher.status === 'ready') void this.onReady();
  }

  private async onReady(): Promise<void> {
    if (this.closed) return;
    const wasDown = !this.up;
    this.up = true;
    const knownPeers = [...this.peers];
    this.rejoined.clear();
    await this.renewLease();
    this.announceJoin();
    // After an outage the others may not be subscribed again yet: what waited for Redis would
    // reach nobody. Wait (bounded) until the peers known before it announced themselves.
    if (wasDown && this.everConnected && this.queue.size > 0) await this.awaitRejoin(knownPeers);
    this.refusedPublishes.reconnected();
    const flushed = await this.queue.flush();
    if (wasDown && this.everConnected) this.emitChange({ kind: 'reconnected' });
    this.everConnected = true;
    if (wasDown) {
      this.logger.log({
        event: 'bus.connected',
        instance_id: this.instanceId,
        flushed_publishes: flushed,
      });
    }
  }

  /** ioredis re-subscribes on reconnect; once that took, the others may count on this one. */
  private async onSubscriberReady(): Promise<void> {
    try {
      await this.subscriber.subscribe(this.channel, this.inbox);
    } catch {
      return; // dropped again: the next 'ready' retries
    }
    this.announceJoin();
    this.subscribedOnce = true;
    this.gapRecoveries.request();
    if (this.subscriptionLost && this.up) {
      this.subscriptionLost = false;
      this.emitChange({ kind: 'resubscribed' });
    }
    if (this.up) await this.queue.flush();
  }

  /** One recovery, run through {@link gapRecoveries}. */
  private async recoverGap(): Promise<void> {
    if (this.closed) return;
    const recovery = this.gapRecovery;
    if (!recovery) return void this.releaseHeld();
    try {
      await recovery.recover(this.hold.holding);
    } catch (error) {
      this.logger.warn({ event: 'bus.gap_recovery_failed', error: String(error) });
      // Nothing held (the first subscription's): nothing was missed, and nothing waits for it.
      if (!this.hold.holding) return;
      if (!this.recoveryRetries.spent) return this.recoveryRetries.schedule();
      // Still refused: the clients get what came since, and are told what they missed, rather
      // than nothing for as long as Redis refuses. A resubscription meanwhile tries once more.
      if (this.subscriber.status !== 'ready' || this.gapRecoveries.askedAgain) return;
      this.recoveryRetries.reset();
      this.logger.error({
        event: 'bus.gap_recovery_abandoned',
        held: this.hold.size,
        error: String(error),
      });
      const released = this.releaseHeld();
      recovery.abandoned(released.some((message) => message.position !== undefined));
      return;
    }
    this.recoveryRetries.reset();
    // A resubscription meanwhile: the next recovery releases what is held.
    if (this.subscriber.status === 'ready' && !this.gapRecoveries.askedAgain) this.releaseHeld();
  }

  /** Ends the hold: delivers what it kept but the recovery delivered already; returns it all. */
  private releaseHeld(): OutboundMessage[] {
    const { messages, overflowed } = this.hold.release();
    for (const message of messages) {
      const key = deliveryKey(message);
      if (!this.recovered.has(key)) this.deliverNow(message, key);
    }
    this.recovered.clear();
    if (overflowed) this.gapRecovery?.overflowed();
    return messages;
  }

  /** Tells the others this instance publishes and listens (again). */
  private announceJoin(): void {
    if (this.closed || !this.up || this.subscriber.status !== 'ready') return;
    this.publisher
      .publish(this.channel, this.encode({ kind: 'join', origin: this.instanceId }))
      .catch(() => undefined);
  }

  /** Answers a joiner directly, so that it knows at once this instance is listening. */
  private welcome(joiner: string): void {
    if (!this.up) return;
    this.publisher
      .publish(this.inboxOf(joiner), this.encode({ kind: 'welcome', origin: this.instanceId }))
      .catch(() => undefined);
  }

  private awaitRejoin(peers: string[]): Promise<void> {
    const missing = () => peers.filter((peer) => !this.rejoined.has(peer));
    if (missing().length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.onRejoin = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.options.requestTimeoutMs);
      timer.unref();
      this.onRejoin = () => {
        if (missing().length === 0) done();
      };
    });
  }

  private onDown(): void {
    if (!this.up || this.closed) return;
    this.up = false;
    this.subscriptionLost = false;
    // The 'ready' that ends the outage reports 'reconnected' itself.
    this.leased = false;
    // Logged once per outage; ioredis reconnects with backoff and re-subscribes by itself.
    this.logger.warn({
      event: 'bus.disconnected',
      instance_id: this.instanceId,
      detail: `Redis unreachable: serving local connections, keeping up to ${this.options.maxBufferedPublishes} publishes`,
    });
  }

  private readonly onClientError = (error: Error): void => {
    // ioredis reports every failed reconnect attempt; the outage itself is logged once.
    this.logger.debug?.({ event: 'bus.redis_error', error: error.message });
  };

  private async renewLease(): Promise<void> {
    if (this.closed || !this.up) return;
    try {
      const [live, gone, added] = (await this.publisher.eval(
        RENEW_LEASE,
        1,
        this.instancesKey,
        this.instanceId,
        String(this.options.leaseMs),
      )) as [string[], string[], number];
      this.peers = live.filter((id) => id !== this.instanceId);
      // Only live peers may stay unwaited-for: ended or foreign ones would pile up for good.
      const alive = new Set(live);
      for (const peer of this.silent) if (!alive.has(peer)) this.silent.delete(peer);
      if (gone.length > 0) this.emitChange({ kind: 'instances_gone', instanceIds: gone });
      const lapsed = added === 1 && this.leased;
      this.leased = true;
      if (lapsed) {
        // Paused past its lease (a stopped process, a long GC): the others reaped it and its
        // presence, though its connections are still open. Rebuilt as after a reconnect.
        this.logger.warn({ event: 'bus.lease_lapsed', instance_id: this.instanceId });
        this.resyncAgain = true;
        this.emitChange({ kind: 'reconnected' });
      } else if (this.resyncAgain) {
        // The reaper clears the presence in a call of its own after the lease: one that landed
        // after the first resync would undo it. A third of a lease later it has run.
        this.resyncAgain = false;
        this.emitChange({ kind: 'reconnected' });
      }
    } catch {
      // Unreachable: the next 'ready' renews it. Reachable but refused (an error reply: a script
      // busy or denied, out of memory) after the first connection: the lease may lapse before a
      // renewal goes through, and the others reap this instance's presence, even the resync
      // that the reconnection ran. Found gone then, the lease counts as lapsed, resync included.
      if (this.up && this.everConnected) this.leased = true;
    }
  }

  private readonly onMessage = (channel: string, payload: string): void => {
    if (channel !== this.channel && channel !== this.inbox) return;
    if (payload.length > MAX_ENVELOPE_CHARS) {
      this.logger.warn({
        event: 'bus.message_too_large',
        chars: payload.length,
        limit: MAX_ENVELOPE_CHARS,
        payload_prefix: payload.slice(0, LOGGED_PAYLOAD_CHARS),
      });
      return;
    }
    // A throw here would escape ioredis's event and end the process: one message is dropped.
    try {
      this.handleMessage(payload);
    } catch (error) {
      this.logger.warn({
        event: 'bus.message_failed',
        error: String(error),
        payload_prefix: payload.slice(0, LOGGED_PAYLOAD_CHARS),
      });
    }
  };

  private handleMessage(payload: string): void {
    const envelope = parseClusterEnvelope(payload);
    if (!envelope) return;
    if (envelope.origin === this.instanceId) return this.onOwn(envelope);
    this.silent.delete(envelope.origin);
    switch (envelope.kind) {
      case 'join':
        void this.admitPeer(envelope.origin);
        this.welcome(envelope.origin);
        this.rejoined.add(envelope.origin);
        this.onRejoin?.();
        return;
      case 'welcome':
        void this.admitPeer(envelope.origin);
        this.rejoined.add(envelope.origin);
        this.onRejoin?.();
        return;
      case 'deliver':
        this.onDeliver(envelope.origin, envelope.message, envelope.ack);
        return;
      case 'ack':
        this.onCount(envelope.origin, envelope.ack, envelope.reached);
        return;
      case 'leave':
        this.peers = this.peers.filter((peer) => peer !== envelope.origin);
        for (const [ack, pending] of this.counts) this.onCount(envelope.origin, ack, 0, pending);
        for (const pending of this.requests.values()) this.onAnswer(envelope.origin, pending);
        return;
      case 'request':
        void this.onRequest(envelope.origin, envelope.id, envelope.topic, envelope.payload);
        return;
      case 'response': {
        const pending = this.requests.get(envelope.id);
        if (!pending) return;
        if (envelope.error !== undefined) {
          // Its handler threw, or it has none for the topic (another version): whether it has
          // what was asked is not known, as for one that did not answer in time.
          if (pending.waiting.has(envelope.origin)) pending.failed.push(envelope.origin);
        } else {
          pending.answers.push({ instanceId: envelope.origin, answer: envelope.answer });
          // The answer sought came: the rest are not waited for (nor reported unreachable).
          if (pending.until?.(envelope.answer)) {
            pending.waiting.clear();
            pending.done();
            return;
          }
        }
        this.onAnswer(envelope.origin, pending);
        return;
      }
    }
  }

  /**
   * Counts a joiner in before the next renewal, if its lease is there: any origin on the channel
   * (Redis may be shared) would otherwise become a peer to wait for.
   */
  private async admitPeer(origin: string): Promise<void> {
    if (this.peers.includes(origin)) return;
    try {
      if ((await this.publisher.zscore(this.instancesKey, origin)) === null) return;
    } catch {
      return; // the next renewal lists it
    }
    if (!this.closed && !this.peers.includes(origin)) this.peers = [...this.peers, origin];
  }

  /** This instance's own stream sends come back to be delivered; marks end a {@link barrier}. */
  private onOwn(envelope: ClusterEnvelope): void {
    if (envelope.kind === 'deliver' && envelope.message.position) {
      this.receive(envelope.message);
    } else if (envelope.kind === 'mark') {
      this.marks.get(envelope.id)?.();
    }
  }

  /** A send from the channel: dropped when seen, held during a recovery, else delivered. */
  private receive(message: OutboundMessage): number {
    const key = deliveryKey(message);
    if (!this.recent.add(key) || this.deliveredFirst.has(key)) return 0;
    if (this.hold.offer(message)) return 0;
    return this.deliverNow(message, key);
  }

  private deliverNow(message: OutboundMessage, key: string): number {
    const reached = this.deliver ? this.deliver(message) : 0;
    if (message.position) this.echoes.get(key)?.(reached);
    return reached;
  }

  /** `delivered` is called as soon as it is delivered here, or will not be by the echo. */
  private awaitEcho(key: string, delivered: () => void): Promise<number> {
    return new Promise((resolve) => {
      const settle = (reached: number, decided = true) => {
        clearTimeout(timer);
        this.echoes.delete(key);
        // Synchronously: the sends waiting behind it go out before the next message is handled.
        if (decided) delivered();
        resolve(reached);
      };
      const timer = setTimeout(() => settle(0), this.options.requestTimeoutMs);
      timer.unref();
      this.echoes.set(key, settle);
    });
  }

  private onDeliver(origin: string, message: OutboundMessage, ack: string | undefined): void {
    const reached = this.receive(message);
    if (!ack || !this.isConnected()) return;
    const reply: ClusterEnvelope = { kind: 'ack', origin: this.instanceId, ack, reached };
    this.publisher.publish(this.inboxOf(origin), this.encode(reply)).catch(() => undefined);
  }

  private async onRequest(
    origin: string,
    id: string,
    topic: string,
    payload: unknown,
  ): Promise<void> {
    const handler = this.handlers.get(topic);
    let reply: ClusterEnvelope;
    try {
      if (!handler) throw new Error(`no handler for ${topic}`);
      reply = { kind: 'response', origin: this.instanceId, id, answer: await handler(payload) };
    } catch (error) {
      // The asker counts this instance unreachable and logs nothing: the cause is told here.
      this.logger.warn({ event: 'bus.request_failed', topic, origin, error: String(error) });
      reply = { kind: 'response', origin: this.instanceId, id, error: String(error) };
    }
    if (!this.closed)
      this.publisher.publish(this.inboxOf(origin), this.encode(reply)).catch(() => undefined);
  }

  private onAnswer(origin: string, pending: PendingRequest): void {
    pending.waiting.delete(origin);
    if (pending.waiting.size === 0) pending.done();
  }

  private inboxOf(instanceId: string): string {
    return `${this.options.namespace}:instance:${instanceId}`;
  }

  private countReplies(ack: string, peers: string[]): Promise<number> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const pending = this.counts.get(ack);
        if (!pending) return;
        for (const peer of pending.waiting) this.silent.add(peer);
        this.logger.warn({
          event: 'bus.count_timeout',
          unanswered_instances: [...pending.waiting],
        });
        pending.done(pending.reached);
      }, this.options.requestTimeoutMs);
      timer.unref();
      this.counts.set(ack, {
        waiting: new Set(peers),
        reached: 0,
        done: (reached) => {
          clearTimeout(timer);
          this.counts.delete(ack);
          resolve(reached);
        },
      });
    });
  }

  private onCount(
    origin: string,
    ack: string,
    reached: number,
    pending = this.counts.get(ack),
  ): void {
    if (!pending) return;
    pending.reached += reached;
    pending.waiting.delete(origin);
    if (pending.waiting.size === 0) pending.done(pending.reached);
  }

  private encode(envelope: ClusterEnvelope): string {
    return JSON.stringify(envelope);
  }
}

function bounded<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise.catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Identifies one copy of a send: a send to several users is one copy per user stream, all with
 * the message's id.
 */
function deliveryKey(message: OutboundMessage): string {
  return `${message.id}|${targetKey(message.target)}`;
}

function targetKey(target: DeliveryTarget): string {
  switch (target.kind) {
    case 'connection':
      return `c:${target.connectionId}`;
    case 'users':
      return `u:${target.userIds.join(',')}`;
    case 'event':
      return `e:${target.event}`;
    case 'room':
      return `r:${target.room}`;
    case 'all':
      return 'a';
  }
}

/** A queued publish as the logs tell of it. */
function describeQueued(item: QueuedPublish): Record<string, unknown> {
  if ('payload' in item) return { payload_bytes: item.payload.length };
  return {
    message_id: item.message.id,
    type: item.message.type,
    streams: item.copies.map(({ stream }) => stream),
  };
}
