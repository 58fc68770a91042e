import type { LogLevel } from '@nestjs/common';
import type { RealtimeModuleOptions } from '../realtime/index.js';

export const DEVELOPMENT_SECRET = 'development-only-secret-change-me';

/** RFC 7518 3.2: an HS256 key is at least as long as the hash, 256 bits. */
export const MIN_SECRET_BYTES = 32;
/** Below this a secret is refused even in development: it can be guessed offline from a token. */
export const MIN_DEVELOPMENT_SECRET_BYTES = 16;

export interface DemoConfig {
  port: number;
  /** Address to listen on: HOST, 127.0.0.1 by default. */
  host: string;
  production: boolean;
  realtime: RealtimeModuleOptions;
  /** True when JWT_SECRET was not set and the development secret is in use. */
  usingDevelopmentSecret: boolean;
  /** Startup warnings about the settings, logged by main.ts once the logger is up. */
  warnings: string[];
  /** LOG_FORMAT=json: one JSON object per log line. */
  jsonLogs: boolean;
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
  const production = env.NODE_ENV === 'production';
  const secret = env.JWT_SECRET;
  const warnings = checkSecret(secret, production);
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
    checkRedisUrl(env.REDIS_URL);
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
  // Digits only: Number() would also take ' ' (0: a random port), '0x50' or '1e3'.
  const port = env.PORT ? (/^\d{1,5}$/.test(env.PORT) ? Number(env.PORT) : NaN) : 3000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number (0-65535), got "${env.PORT}"`);
  }
  const host = env.HOST || '127.0.0.1';
  if (!production) warnings.push(tokenEndpointWarning(host));
  const format = env.LOG_FORMAT ?? '';
  if (!['', 'json', 'text'].includes(format)) {
    throw new Error(`LOG_FORMAT must be json or text, got "${format}"`);
  }
  return {
    port,
    host,
    production,
    realtime,
    usingDevelopmentSecret: !secret,
    warnings,
    jsonLogs: format === 'json',
    logLevels: logLevelsFrom(env.LOG_LEVEL),
  };
}

/**
 * The development secret is public (it is in this file) and a short secret can be brute-forced
 * from any token: either would let anyone sign admin tokens. Refused in production; a secret
 * shorter than the RFC's minimum is only a warning in development, under 16 bytes an error.
 */
function checkSecret(secret: string | undefined, production: boolean): string[] {
  if (!secret) {
    if (production) {
      throw new Error('JWT_SECRET must be set when NODE_ENV=production');
    }
    return ['JWT_SECRET is not set: using the public development secret (refused in production).'];
  }
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes >= MIN_SECRET_BYTES) return [];
  const tooShort = `JWT_SECRET is ${bytes} bytes; HS256 needs at least ${MIN_SECRET_BYTES}`;
  if (production || bytes < MIN_DEVELOPMENT_SECRET_BYTES) {
    throw new Error(`${tooShort} (e.g. openssl rand -base64 32)`);
  }
  return [`${tooShort}: refused when NODE_ENV=production.`];
}

/** POST /demo/token mints admin tokens for anyone: say so at every start where it is on. */
function tokenEndpointWarning(host: string): string {
  const loopback = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i.test(host);
  const where = loopback ? '' : ` (HOST=${host}: reachable from other machines)`;
  return (
    `POST /demo/token is ON${where}: anyone who can reach this server can get a token for any ` +
    "user id, admin included, signed with this server's secret. NODE_ENV=production turns it off."
  );
}

/** ioredis would take a typo for a host name and retry it for ever, with nothing said at start. */
function checkRedisUrl(value: string): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(value).protocol;
  } catch {
    // not a URL
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    throw new Error('REDIS_URL must be a redis:// or rediss:// URL');
  }
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
