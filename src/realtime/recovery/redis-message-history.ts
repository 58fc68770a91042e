import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { compareOffsets, type StreamPosition } from '../../protocol/index.js';
import { failFastConnection } from '../bus/redis-connections.js';
import type { HistoryBounds } from './in-memory-message-history.js';
import {
  type HistoryEntry,
  type HistoryRead,
  type HistoryRecord,
  MessageHistory,
} from './message-history.js';

// Keys, under the namespace: `history:epoch` (made by the first append or read after Redis lost
// its data, so that a restart without persistence shows as a new epoch), `history:stream:<name>`
// (a Redis Stream; entry ids are the offsets) and `history:dropped:<name>` (the highest id trimmed
// from it, which says whether a gap can still be replayed in full: Redis does not record it for
// trims). Streams are trimmed by count and age on every write and read, and expire after
// `idleTtl` without writes.

/**
 * Shared Lua: trims KEYS[1] to a count and age (ms), keeping the highest dropped id in KEYS[3];
 * reads or makes the epoch in KEYS[2].
 */
const LUA_HELPERS = `
local function trim(count, age)
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age
  local dropped = nil
  local aged = redis.call('XREVRANGE', KEYS[1], '(' .. oldest, '-', 'COUNT', 1)
  if #aged > 0 then
    dropped = aged[1][1]
    redis.call('XTRIM', KEYS[1], 'MINID', tostring(oldest))
  end
  local excess = redis.call('XLEN', KEYS[1]) - count
  if excess > 0 then
    local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
    dropped = old[#old][1]
    redis.call('XTRIM', KEYS[1], 'MAXLEN', count)
  end
  if dropped then redis.call('SET', KEYS[3], dropped) end
end

-- The epoch in KEYS[2], made from \`fresh\` when Redis lost it (a restart without persistence).
local function current_epoch(fresh)
  local epoch = redis.call('GET', KEYS[2])
  if not epoch then
    epoch = fresh
    redis.call('SET', KEYS[2], epoch)
  end
  return epoch
end
`;

const APPEND = `${LUA_HELPERS}
local epoch = current_epoch(ARGV[1])
local id = redis.call('XADD', KEYS[1], '*',
  'id', ARGV[4], 'type', ARGV[5], 'frame', ARGV[6], 'except', ARGV[7])
trim(tonumber(ARGV[2]), tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('PEXPIRE', KEYS[3], ARGV[8])
return { id, epoch }`;

const READ = `${LUA_HELPERS}
local epoch = current_epoch(ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 0 then return { epoch, 0, '', '', {} } end
trim(tonumber(ARGV[6]), tonumber(ARGV[2]))
local dropped = redis.call('GET', KEYS[3]) or '0-0'
local last = '0-0'
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1] end
end
local entries = {}
if epoch == ARGV[3] then
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[4])
end
return { epoch, 1, dropped, last, entries }`;

const REDIS_OFFSET = /^\d{1,20}-\d{1,20}$/;

/** Idle streams are dropped after this many `maxAgeMs`: by then all they held had expired. */
const IDLE_TTL_FACTOR = 10;
/** How long a command waits for the first connection (commands fail fast after that). */
const FIRST_CONNECT_MS = 2000;

/**
 * History shared by every instance through Redis Streams (one Redis, not Redis Cluster), so a
 * client that reconnects to another instance can resume (PROTOCOL.md section 9).
 */
export class RedisMessageHistory extends MessageHistory {
  private readonly redis: Redis;
  private readonly epochKey: string;

  /** `connection`: a URL, or a connection to copy (its settings, with fail-fast commands). */
  constructor(
    connection: string | Redis,
    private readonly namespace: string,
    private readonly bounds: Pick<HistoryBounds, 'maxMessages' | 'maxAgeMs'>,
  ) {
    super();
    this.redis = failFastConnection(connection);
    this.epochKey = `${namespace}:history:epoch`;
  }

  async append(stream: string, record: HistoryRecord): Promise<StreamPosition> {
    await this.firstConnection();
    const [offset, epoch] = (await this.redis.eval(
      APPEND,
      3,
      this.streamKey(stream),
      this.epochKey,
      this.droppedKey(stream),
      randomUUID().slice(0, 8),
      String(this.bounds.maxMessages),
      String(this.bounds.maxAgeMs),
      record.id,
      record.type,
      record.frame,
      record.exceptUserId ?? '',
      String(this.bounds.maxAgeMs * IDLE_TTL_FACTOR),
    )) as [string, string];
    return { stream, offset, epoch };
  }

  async readAfter(
    stream: string,
    offset: string,
    epoch: string,
    limit: number,
  ): Promise<HistoryRead> {
    await this.firstConnection();
    const valid = REDIS_OFFSET.test(offset);
    const [current, exists, dropped, last, raw] = (await this.redis.eval(
      READ,
      3,
      this.streamKey(stream),
      this.epochKey,
      this.droppedKey(stream),
      valid ? offset : '0-0',
      String(this.bounds.maxAgeMs),
      valid ? epoch : '',
      String(limit),
      randomUUID().slice(0, 8),
      String(this.bounds.maxMessages),
    )) as [string, number, string, string, Array<[string, string[]]>];
    const lastOffset = exists && last !== '0-0' ? { lastOffset: last } : {};
    if (!valid || current !== epoch || !exists) {
      // A stream that expired idle held nothing younger than its TTL: the gap is unknown.
      return { epoch: current, entries: [], complete: false, ...lastOffset };
    }
    const entries = raw.map(([id, fields]) => toEntry(id, fields));
    return {
      epoch: current,
      entries,
      complete: compareOffsets(dropped, offset) <= 0,
      ...lastOffset,
    };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  /**
   * Waits (bounded) while the connection is still being made for the first time; during a later
   * outage commands fail at once instead, like every fail-fast connection of the module.
   */
  private async firstConnection(): Promise<void> {
    if (this.redis.status !== 'wait' && this.redis.status !== 'connecting') return;
    if (this.redis.status === 'wait') void this.redis.connect().catch(() => undefined);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, FIRST_CONNECT_MS);
      this.redis.once('ready', done);
    });
  }

  private streamKey(stream: string): string {
    return `${this.namespace}:history:stream:${stream}`;
  }

  private droppedKey(stream: string): string {
    return `${this.namespace}:history:dropped:${stream}`;
  }
}

function toEntry(offset: string, fields: string[]): HistoryEntry {
  const value = (name: string) => fields[fields.indexOf(name) + 1] ?? '';
  const except = value('except');
  return {
    offset,
    id: value('id'),
    type: value('type'),
    frame: value('frame'),
    ...(except ? { exceptUserId: except } : {}),
  };
}
