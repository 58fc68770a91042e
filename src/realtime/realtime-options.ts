import type { ThrottlerStorage } from '@nestjs/throttler';
import { type ConnectionLimits, DEFAULT_SUBSCRIBABLE_EVENTS } from '../protocol/index.js';
import type { RealtimePrincipal } from './auth/realtime-principal.js';
import type { RealtimeBus } from './bus/realtime-bus.js';
import { type RedisBusOptions, redisBusOptionsProblem } from './bus/redis-bus-options.js';
import {
  type HistoryOptions,
  type ResolvedHistoryOptions,
  resolveHistoryOptions,
} from './recovery/history-options.js';
import { EVENT_RULE, nameProblem } from './name-limits.js';
import { MAX_TIMER_MS } from './timer-limits.js';

/** Token of the options with defaults applied ({@link ResolvedRealtimeOptions}). */
export const REALTIME_OPTIONS = Symbol('REALTIME_OPTIONS');

/** JWT signature algorithms that may be accepted (`none` is not one of them). */
export type JwtAlgorithm =
  | 'HS256'
  | 'HS384'
  | 'HS512'
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'PS256'
  | 'PS384'
  | 'PS512';

/** How tokens are verified. Give `secret` (HS*) or `publicKey` (RS*, ES*, PS*). */
export interface RealtimeJwtOptions {
  /** Shared secret for HMAC algorithms. */
  secret?: string;
  /** PEM public key for asymmetric algorithms. */
  publicKey?: string;
  /** @default ['HS256'] (with `publicKey`: ['RS256']). `none` is always refused. */
  algorithms?: JwtAlgorithm[];
  /** Required `iss`, when set. */
  issuer?: string | string[];
  /** Required `aud`, when set. */
  audience?: string | string[];
  /** Seconds of clock skew tolerated on `exp` and `nbf`. @default 0 */
  clockToleranceSeconds?: number;
}

/** Decides whether a principal may subscribe to a name outside the event allow-list. */
export type SubscriptionAuthorizer = (
  name: string,
  principal: RealtimePrincipal,
) => boolean | Promise<boolean>;

export interface RealtimeModuleOptions {
  /** Token verification. */
  jwt: RealtimeJwtOptions;
  /** Path of the WebSocket endpoint; `<path>/<token>` is accepted too. @default '/ws' */
  path?: string;
  /** Exact `Origin` values allowed (scheme, host, port). Empty allows any. @default [] */
  allowedOrigins?: string[];
  /** Names a client may subscribe to. @default PROTOCOL.md's twelve default events */
  events?: string[];
  /** Accepts names outside `events`, such as `room:42`. @default refuses all */
  subscriptionAuthorizer?: SubscriptionAuthorizer;
  /** Connections one user may hold; the oldest is evicted (4008). @default 3 */
  maxConnectionsPerUser?: number;
  /** Connections per instance; more are refused (1013). @default 1000 */
  maxTotalConnections?: number;
  /** Connections per remote address; 0 turns the limit off. @default 0 */
  maxConnectionsPerIp?: number;
  /**
   * WebSocket upgrades per remote address per second, counted before the token is verified;
   * more are answered 429 with Retry-After. 0 turns the limit off. @default 0
   */
  maxConnectionsPerIpPerSecond?: number;
  /**
   * Evictions (4008) one user may cause per minute on an instance; past it a new connection of
   * that user is refused with 1013 instead, so that two clients that reconnect at once after
   * 4008 cannot evict each other forever. 0 turns the limit off. @default 30
   */
  maxEvictionsPerUserPerMinute?: number;
  /** Largest inbound and outbound message in bytes (1009 inbound). @default 65536 */
  maxMessageSize?: number;
  /** Interval of protocol-level pings, ms. @default 30000 */
  heartbeatIntervalMs?: number;
  /** A connection with no inbound frame for this long is closed (4000), ms. @default 60000 */
  connectionTimeoutMs?: number;
  /** Messages a user may send per window, invalid ones included. @default 100 */
  rateLimitMessages?: number;
  /** Rate-limit window, ms. @default 60000 */
  rateLimitWindowMs?: number;
  /** Send buffer bound per connection; past it the connection is closed (4010). @default 1048576 */
  maxBufferedBytes?: number;
  /** How long a closing connection may take before its socket is dropped, ms. @default 5000 */
  closeGraceMs?: number;
  /** Subscriptions one connection may hold. @default 100 */
  maxSubscriptionsPerConnection?: number;
  /** Connections one room may hold. @default 10000 */
  maxRoomSize?: number;
  /** Admin API requests per admin per minute. @default 120 */
  adminRateLimit?: number;
  /** Message bus between instances. @default an in-process bus (or a Redis bus with `redis`) */
  bus?: RealtimeBus;
  /** Run as one of several instances over Redis: a `redis://` URL or {@link RedisBusOptions}. */
  redis?: string | RedisBusOptions;
  /** Storage of the per-user rate limit (any @nestjs/throttler storage). @default in memory */
  throttlerStorage?: ThrottlerStorage;
  /** Message history for `resume` (section 9), or `false` for none. @default see HistoryOptions */
  history?: HistoryOptions | false;
}

/** The limits announced to clients in `connection.established` (sizes in bytes, times in seconds). */
export function announcedLimits(options: ResolvedRealtimeOptions): ConnectionLimits {
  return {
    max_message_size: options.maxMessageSize,
    rate_limit_messages: options.rateLimitMessages,
    rate_limit_window: options.rateLimitWindowMs / 1000,
    heartbeat_interval: options.heartbeatIntervalMs / 1000,
    connection_timeout: options.connectionTimeoutMs / 1000,
    max_connections_per_user: options.maxConnectionsPerUser,
  };
}

/** Options with every default applied; what the rest of the module reads. */
export type ResolvedRealtimeOptions = Required<
  Omit<
    RealtimeModuleOptions,
    'subscriptionAuthorizer' | 'bus' | 'redis' | 'throttlerStorage' | 'jwt' | 'history'
  >
> &
  Pick<RealtimeModuleOptions, 'subscriptionAuthorizer' | 'bus' | 'redis' | 'throttlerStorage'> & {
    jwt: RealtimeJwtOptions & { algorithms: JwtAlgorithm[]; clockToleranceSeconds: number };
    history: ResolvedHistoryOptions | false;
  };

export const REALTIME_DEFAULTS = {
  path: '/ws',
  allowedOrigins: [] as string[],
  events: [...DEFAULT_SUBSCRIBABLE_EVENTS],
  maxConnectionsPerUser: 3,
  maxTotalConnections: 1000,
  maxConnectionsPerIp: 0,
  maxConnectionsPerIpPerSecond: 0,
  maxEvictionsPerUserPerMinute: 30,
  maxMessageSize: 64 * 1024,
  heartbeatIntervalMs: 30_000,
  connectionTimeoutMs: 60_000,
  rateLimitMessages: 100,
  rateLimitWindowMs: 60_000,
  maxBufferedBytes: 1024 * 1024,
  closeGraceMs: 5_000,
  maxSubscriptionsPerConnection: 100,
  maxRoomSize: 10_000,
  adminRateLimit: 120,
} as const;

const POSITIVE_INTEGER_OPTIONS = [
  'maxConnectionsPerUser',
  'maxTotalConnections',
  'maxMessageSize',
  'heartbeatIntervalMs',
  'connectionTimeoutMs',
  'rateLimitMessages',
  'rateLimitWindowMs',
  'maxBufferedBytes',
  'closeGraceMs',
  'maxSubscriptionsPerConnection',
  'maxRoomSize',
  'adminRateLimit',
] as const;

const ZERO_MEANS_OFF_OPTIONS = [
  'maxConnectionsPerIp',
  'maxConnectionsPerIpPerSecond',
  'maxEvictionsPerUserPerMinute',
] as const;

/** Applies defaults and refuses settings that cannot work, with a message that says the fix. */
export function resolveRealtimeOptions(options: RealtimeModuleOptions): ResolvedRealtimeOptions {
  const { jwt } = options;
  if (!jwt || (!jwt.secret && !jwt.publicKey)) {
    throw new Error('RealtimeModule: set jwt.secret (HS*) or jwt.publicKey (RS*/ES*/PS*)');
  }
  const algorithms: JwtAlgorithm[] = jwt.algorithms ?? (jwt.publicKey ? ['RS256'] : ['HS256']);
  if (algorithms.length === 0 || algorithms.some((alg) => String(alg).toLowerCase() === 'none')) {
    throw new Error('RealtimeModule: jwt.algorithms must list real algorithms; "none" is refused');
  }
  for (const [name, value] of [
    ['issuer', jwt.issuer],
    ['audience', jwt.audience],
  ] as const) {
    if (Array.isArray(value) && value.length === 0) {
      throw new Error(
        `RealtimeModule: jwt.${name} must not be an empty list; leave it unset instead`,
      );
    }
  }
  const clockToleranceSeconds = jwt.clockToleranceSeconds ?? 0;
  if (!Number.isFinite(clockToleranceSeconds) || clockToleranceSeconds < 0) {
    throw new Error('RealtimeModule: jwt.clockToleranceSeconds must be a finite number >= 0');
  }
  const resolved: ResolvedRealtimeOptions = {
    ...REALTIME_DEFAULTS,
    ...stripUndefined(options),
    events: [...(options.events ?? REALTIME_DEFAULTS.events)],
    allowedOrigins: [...(options.allowedOrigins ?? [])],
    path: normalizePath(options.path ?? REALTIME_DEFAULTS.path),
    jwt: { ...jwt, algorithms, clockToleranceSeconds },
    history: resolveHistoryOptions(options.history),
  };
  for (const key of POSITIVE_INTEGER_OPTIONS) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value <= 0) {
      throw new Error(`RealtimeModule: ${key} must be a positive integer, got ${String(value)}`);
    }
    if (key.endsWith('Ms') && value > MAX_TIMER_MS) {
      throw new Error(`RealtimeModule: ${key} must be at most ${MAX_TIMER_MS} ms (Node's timers)`);
    }
  }
  for (const key of ZERO_MEANS_OFF_OPTIONS) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value < 0) {
      throw new Error(`RealtimeModule: ${key} must be 0 (off) or a positive integer`);
    }
  }
  // Before the bus is made: it connects to Redis at once.
  if (typeof options.redis === 'object' && options.redis !== null) {
    const problem = redisBusOptionsProblem(options.redis);
    if (problem) throw new Error(`RealtimeModule: ${problem}`);
  }
  for (const event of resolved.events) {
    // subscribe refuses such a name: listed, it could never be subscribed to.
    const problem = nameProblem(EVENT_RULE, event, `events entry ${JSON.stringify(event)}`);
    if (problem) throw new Error(`RealtimeModule: ${problem}`);
  }
  if (resolved.connectionTimeoutMs <= resolved.heartbeatIntervalMs) {
    throw new Error(
      'RealtimeModule: connectionTimeoutMs must be longer than heartbeatIntervalMs, or clients ' +
        'that only answer pings would time out',
    );
  }
  if (resolved.maxBufferedBytes < resolved.maxMessageSize) {
    throw new Error(
      'RealtimeModule: maxBufferedBytes must be at least maxMessageSize, or one large message ' +
        'would close a client that reads normally (4010)',
    );
  }
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, entry]) => entry !== undefined),
  ) as Partial<T>;
}

function normalizePath(path: string): string {
  const trimmed = `/${path}`.replace(/\/+/g, '/').replace(/\/$/, '');
  return trimmed === '' ? '/' : trimmed;
}
