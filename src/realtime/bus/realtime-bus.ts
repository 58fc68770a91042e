import type { HistoryRecord, MessageHistory } from '../recovery/message-history.js';
import type { OutboundMessage } from './delivery-target.js';
import { SendOrder } from './send-order.js';

/** Delivers a message to this instance's connections; returns how many were reached. */
export type LocalDeliver = (message: OutboundMessage) => number;

/** One stream of a send, and the recipients of that stream's copy. */
export interface StreamCopy {
  stream: string;
  target: OutboundMessage['target'];
}

/** Answers one kind of request from other instances. */
export type RequestHandler = (payload: unknown) => unknown;

/**
 * What the bus tells about the cluster: instances that ended; this one reconnecting after an
 * outage; or this one receiving again after an outage of its subscription alone, during which it
 * could publish but missed what the others published (their requests to it went unanswered).
 */
export type ClusterChange =
  | { kind: 'instances_gone'; instanceIds: string[] }
  | { kind: 'reconnected' }
  | { kind: 'resubscribed' };

/** Whom to ask, and when to stop waiting. */
export interface RequestOptions<T> {
  /** Ask only this instance. */
  to?: string;
  /** Stop waiting as soon as an answer satisfies this (e.g. the owner of a connection said so). */
  until?: (answer: T) => boolean;
}

/** What other instances answered to a request. */
export interface ClusterAnswers<T = unknown> {
  /** One entry per instance that answered in time. */
  answers: Array<{ instanceId: string; answer: T }>;
  /**
   * Instances believed alive that gave no answer: none within the request timeout, or an error
   * (their handler threw, or they have none for the topic). Those not waited for once an answer
   * satisfied `until` are not listed.
   */
  unreachable: string[];
  /** True when the bus could not reach the others at all: answers are this instance's only. */
  degraded: boolean;
}

/** What a request that failed outright counts as: nobody reached. */
export const NO_ANSWERS: ClusterAnswers<never> = { answers: [], unreachable: [], degraded: true };

/**
 * Some instance that may hold what was asked gave no answer (or none could be asked): "nobody
 * answered yes" is then not "nobody has it".
 */
export function answersIncomplete({ unreachable, degraded }: ClusterAnswers): boolean {
  return degraded || unreachable.length > 0;
}

/**
 * Carries messages between instances. Every send goes through it; delivery to the sockets of
 * this instance happens in the one function given to {@link subscribe}.
 */
export abstract class RealtimeBus {
  /** This instance's id in the cluster. */
  abstract readonly instanceId: string;
  /**
   * This instance's sends in the order issued: a send without a stream waits (here only) for the
   * stream copies issued before it to be delivered here (README, PROTOCOL 10).
   */
  protected readonly sendOrder = new SendOrder();
  /** Hands the message to every instance, this one included; resolves to connections reached. */
  abstract publish(message: OutboundMessage): Promise<number>;
  /**
   * Sends a message in its streams (section 9): each copy is appended to its stream in `history`,
   * then published with that position. A bus whose instances could otherwise see a stream out of
   * offset order does both at once. Resolves to the connections reached by all copies.
   */
  publishInStreams(
    message: OutboundMessage,
    copies: readonly StreamCopy[],
    history: MessageHistory,
  ): Promise<number> {
    // Not `async` (every connect comes here with user.status_changed, see RealtimeService): a
    // synchronous throw still becomes a rejection.
    try {
      // One copy (every send but one to several users): no array of promises to gather.
      if (copies.length === 1) return this.publishStreamCopy(message, copies[0]!, history);
      return Promise.all(copies.map((copy) => this.publishStreamCopy(message, copy, history))).then(
        sum,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private publishStreamCopy(
    { id, type, frame }: OutboundMessage,
    { stream, target }: StreamCopy,
    history: MessageHistory,
  ): Promise<number> {
    // Field by field: a spread that adds a field (`{ ...copy, position }`) costs V8 a microsecond.
    // Promise.resolve: a history written in plain JS may answer a position, as `await` took.
    const appended = history.append(stream, historyRecord({ id, type, target, frame }));
    // After the append, which may throw: a copy that never was must not hold the sends after it.
    const delivered = this.sendOrder.begin();
    return Promise.resolve(appended).then(
      (position) => {
        try {
          return this.publishPositioned({ id, type, target, frame, position });
        } finally {
          delivered();
        }
      },
      (error: unknown) => {
        delivered();
        throw error;
      },
    );
  }

  /**
   * Publishes a stream copy with its position, delivering it here at once: it is in its turn
   * (see {@link sendOrder}), unlike a send without a stream, which {@link publish} may hold.
   */
  protected publishPositioned(message: OutboundMessage): Promise<number> {
    return this.publish(message);
  }

  /** Sets the function that delivers messages to this instance's connections. */
  abstract subscribe(deliver: LocalDeliver): void;
  /**
   * Asks every other live instance (or only `options.to`); resolves when all answered, when an
   * answer satisfies `options.until`, or when the request timeout ran out.
   */
  abstract request<T>(
    topic: string,
    payload: unknown,
    options?: RequestOptions<T>,
  ): Promise<ClusterAnswers<T>>;
  /** Answers requests of `topic` from other instances. */
  abstract handle(topic: string, handler: RequestHandler): void;
  /** Instances whose lease is current, this one included. */
  abstract liveInstances(): string[];
  /**
   * Reports instances whose lease ended without a goodbye (to exactly one surviving instance),
   * and this instance's reconnections, so that shared state can be repaired.
   */
  abstract onClusterChange(listener: (change: ClusterChange) => void): void;
  /** False while the other instances cannot be reached. */
  abstract isConnected(): boolean;
  abstract close(): Promise<void>;
}

function sum(counts: number[]): number {
  return counts.reduce((total, count) => total + count, 0);
}

/** What the history keeps of a message: a broadcast also keeps whom it left out. */
export function historyRecord(message: OutboundMessage): HistoryRecord {
  const { id, type, frame, target } = message;
  const exceptUserId = target.kind === 'all' ? target.exceptUserId : undefined;
  return { id, type, frame, ...(exceptUserId === undefined ? {} : { exceptUserId }) };
}
