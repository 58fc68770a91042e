import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { compareOffsets, type StreamPosition } from '../../protocol/index.js';
import type { ReconnectTogether } from '../bus/reconnect-together.js';
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

// Appends ARGV[4..7] to KEYS[1], trims it, and renews the TTL of the stream and its dropped id.
const APPEND_STEPS = `${LUA_HELPERS}
local epoch = current_epoch(ARGV[1])
local id = redis.call('XADD', KEYS[1], '*',
  'id', ARGV[4], 'type', ARGV[5], 'frame', ARGV[6], 'except', ARGV[7])
trim(tonumber(ARGV[2]), tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('PEXPIRE', KEYS[3], ARGV[8])
`;

const APPEND = `${APPEND_STEPS}
return { id, epoch }`;

// Like APPEND, and publishes the message with its position in the same script: Redis runs
// scripts one at a time, so every subscriber sees a stream's messages in offset order, whichever
// instance sent them. ARGV[9..12]: channel, envelope head, stream as JSON, envelope tail.
const APPEND_AND_PUBLISH = `${APPEND_STEPS}
redis.call('PUBLISH', ARGV[9], ARGV[10] .. '{"stream":' .. ARGV[11] .. ',"offset":"' .. id ..
  '","epoch":"' .. epoch .. '"}' .. ARGV[12])
return { id, epoch }`;

// Reads several streams at once for an instance that missed messages: KEYS[1] is the epoch,
// then a stream and its dropped-id key per stream; ARGV: a fresh epoch, the epoch the caller
// knows, the most entries per stream, then one XRANGE start per stream. When the epoch is not
// the known one, every stream is read from its start: all it holds came after the loss.
const READ_MANY = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local changed = epoch ~= ARGV[2]
local out = {}
for i = 2, #KEYS, 2 do
  local n = i / 2
  local start = ARGV[3 + n]
  if changed then start = '-' end
  local entries = {}
  local exists = redis.call('EXISTS', KEYS[i])
  if exists == 1 then
    entries = redis.call('XRANGE', KEYS[i], start, '+', 'COUNT', ARGV[3])
  end
  out[n] = { exists, redis.call('GET', KEYS[i + 1]) or '0-0', entries }
end
return { epoch, tostring(now), out }`;

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

/** Where a catch-up read of one stream starts. */
export interface CatchUpStart {
  stream: string;
  /** Read entries after this offset (exclusive), or from this Redis time on (inclusive). */
  after?: string;
  fromMs?: number;
}

/** What a catch-up read found in one stream. */
export interface CatchUpRead {
  stream: string;
  entries: HistoryEntry[];
  /** False when entries the caller had not seen may have been dropped already. */
  complete: boolean;
}

/** The envelope a message is published in, split where the script puts the position. */
export interface PublishedEnvelope {
  channel: string;
  head: string;
  tail: string;
}

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
    reconnects?: ReconnectTogether,
  ) {
    super();
    this.redis = failFastConnection(connection, reconnects);
    this.epochKey = `${namespace}:history:epoch`;
  }

  async append(stream: string, record: HistoryRecord): Promise<StreamPosition> {
    await this.firstConnection();
    const [offset, epoch] = (await this.redis.eval(
      APPEND,
      ...this.appendArguments(stream, record),
    )) as [string, string];
    return { stream, offset, epoch };
  }

  /** Keys and arguments shared by APPEND and APPEND_AND_PUBLISH. */
  private appendArguments(stream: string, record: HistoryRecord): [number, ...string[]] {
    return [
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
    ];
  }

  /**
   * Appends, then publishes `envelope` with the position in it, in one script. `via` runs the
   * script on another connection (the bus publisher), so that it is ordered after what that
   * connection published before.
   */
  async appendAndPublish(
    stream: string,
    record: HistoryRecord,
    envelope: PublishedEnvelope,
    via: Redis = this.redis,
  ): Promise<StreamPosition> {
    const [offset, epoch] = (await via.eval(
      APPEND_AND_PUBLISH,
      ...this.appendArguments(stream, record),
      envelope.channel,
      envelope.head,
      JSON.stringify(stream),
      envelope.tail,
    )) as [string, string];
    return { stream, offset, epoch };
  }

  /**
   * Reads what an instance may have missed in each of `starts` (all of them when the epoch is
   * not `knownEpoch`); also tells the epoch and Redis's time, the clock offsets are made from.
   */
  async readMissed(
    starts: readonly CatchUpStart[],
    knownEpoch: string,
  ): Promise<{ epoch: string; nowMs: number; streams: CatchUpRead[] }> {
    await this.firstConnection();
    const keys = starts.flatMap(({ stream }) => [this.streamKey(stream), this.droppedKey(stream)]);
    const [epoch, now, raw] = (await this.redis.eval(
      READ_MANY,
      1 + keys.length,
      this.epochKey,
      ...keys,
      randomUUID().slice(0, 8),
      knownEpoch,
      String(this.bounds.maxMessages),
      ...starts.map(xrangeStart),
    )) as [string, string, Array<[number, string, Array<[string, string[]]>]>];
    const nowMs = Number(now);
    const idleTtl = this.bounds.maxAgeMs * IDLE_TTL_FACTOR;
    const streams = starts.map((start, index): CatchUpRead => {
      const [exists, dropped, entries] = raw[index]!;
      if (epoch !== knownEpoch) {
        return { stream: start.stream, entries: entries.map(toEntryOf), complete: false };
      }
      const since = start.after ?? `${Math.max(0, (start.fromMs ?? 0) - 1)}-${MAX_SEQ}`;
      // A stream that expired idle held nothing younger than its TTL; past that, unknown.
      const complete = exists
        ? compareOffsets(dropped, since) <= 0
        : nowMs - sinceMs(since) < idleTtl;
      return { stream: start.stream, entries: entries.map(toEntryOf), complete };
    });
    return { epoch, nowMs, streams };
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

  /** Its connection is (again) ready: after an outage, maybe later than the bus's. */
  onReady(listener: () => void): void {
    this.redis.on('ready', listener);
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

/** The highest sequence number within one millisecond of a Redis Stream id. */
const MAX_SEQ = '18446744073709551615';

function xrangeStart(start: CatchUpStart): string {
  return start.after === undefined ? `${start.fromMs ?? 0}-0` : `(${start.after}`;
}

function sinceMs(offset: string): number {
  return Number(offset.split('-')[0]);
}

function toEntryOf([offset, fields]: [string, string[]]): HistoryEntry {
  return toEntry(offset, fields);
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
