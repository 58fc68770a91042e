import type { LogLevel } from '@nestjs/common';
import type { RealtimeModuleOptions } from '../realtime/index.js';

export const DEVELOPMENT_SECRET = 'development-only-secret-change-me';

export interface DemoConfig {
  port: number;
  production: boolean;
  realtime: RealtimeModuleOptions;
  /** True when JWT_SECRET was not set and the development secret is in use. */
  usingDevelopmentSecret: boolean;
  /** Levels printed: LOG_LEVEL and every level above it; undefined for Nest's default (all). */
  logLevels: LogLevel[] | undefined;
}

/** Nest's levels, least severe first. */
const LOG_LEVELS: readonly LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];

const NUMERIC_SETTINGS = {
  REALTIME_HEARTBEAT_INTERVAL_MS: 'heartbeatIntervalMs',
  REALTIME_CONNECTION_TIMEOUT_MS: 'connectionTimeoutMs',
  REALTIME_RATE_LIMIT_MESSAGES: 'rateLimitMessages',
  REALTIME_RATE_LIMIT_WINDOW_MS: 'rateLimitWindowMs',
  REALTIME_MAX_CONNECTIONS_PER_USER: 'maxConnectionsPerUser',
  REALTIME_MAX_TOTAL_CONNECTIONS: 'maxTotalConnections',
  REALTIME_MAX_MESSAGE_SIZE: 'maxMessageSize',
  REALTIME_MAX_BUFFERED_BYTES: 'maxBufferedBytes',
  REALTIME_ADMIN_RATE_LIMIT: 'adminRateLimit',
} as const;

/** Reads the demo's settings from the environment; a malformed number is an error, not a default. */
export function loadDemoConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const secret = env.JWT_SECRET;
  const realtime: RealtimeModuleOptions = {
    jwt: { secret: secret || DEVELOPMENT_SECRET },
    allowedOrigins: list(env.REALTIME_ALLOWED_ORIGINS),
    // Demo rooms: any signed-in user may follow `room:<name>`.
    subscriptionAuthorizer: (name) => /^room:[\w-]{1,64}$/.test(name),
    // The dashboard (/admin) polls stats, connections and a few details every second.
    adminRateLimit: 600,
  };
  for (const [variable, option] of Object.entries(NUMERIC_SETTINGS)) {
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0) {
      throw new Error(`${variable} must be a positive integer, got "${raw}"`);
    }
    realtime[option] = value;
  }
  if (env.REDIS_URL) {
    // Several demo processes on one Redis form one cluster.
    const lease = env.REALTIME_LEASE_MS ? Number(env.REALTIME_LEASE_MS) : undefined;
    if (lease !== undefined && (!Number.isInteger(lease) || lease <= 0)) {
      throw new Error(
        `REALTIME_LEASE_MS must be a positive integer, got "${env.REALTIME_LEASE_MS}"`,
      );
    }
    realtime.redis = {
      url: env.REDIS_URL,
      ...(lease === undefined ? {} : { leaseMs: lease }),
      ...(env.REALTIME_REDIS_NAMESPACE ? { namespace: env.REALTIME_REDIS_NAMESPACE } : {}),
    };
  }
  const port = env.PORT ? Number(env.PORT) : 3000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number, got "${env.PORT}"`);
  }
  return {
    port,
    production: env.NODE_ENV === 'production',
    realtime,
    usingDevelopmentSecret: !secret,
    logLevels: logLevelsFrom(env.LOG_LEVEL),
  };
}

function logLevelsFrom(value: string | undefined): LogLevel[] | undefined {
  if (value === undefined || value === '') return undefined;
  const index = LOG_LEVELS.indexOf(value as LogLevel);
  if (index < 0) {
    throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  }
  return LOG_LEVELS.slice(index);
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}
