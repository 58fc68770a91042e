import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InMemoryMessageHistory } from './in-memory-message-history.js';

const record = (n: number) => ({ id: `id-${n}`, type: 't', frame: `{"n":${n}}` });

describe('InMemoryMessageHistory', () => {
  function history(bounds: Partial<ConstructorParameters<typeof InMemoryMessageHistory>[0]> = {}) {
    let now = 0;
    const store = new InMemoryMessageHistory(
      { maxMessages: 5, maxAgeMs: 1000, maxStreams: 3, maxBytes: 1_000_000, ...bounds },
      () => now,
    );
    return { store, advance: (ms: number) => (now += ms) };
  }

  it('gives increasing offsets and one epoch; reads what came after an offset, in order', async () => {
    const { store } = history();
    const a = await store.append('s', record(1));
    const b = await store.append('s', record(2));
    const c = await store.append('s', record(3));
    assert.equal(a.epoch, c.epoch);
    assert.ok(Number(a.offset) < Number(b.offset) && Number(b.offset) < Number(c.offset));
    const read = await store.readAfter('s', a.offset, a.epoch, 10);
    assert.deepEqual(
      read.entries.map((e) => e.id),
      ['id-2', 'id-3'],
    );
    assert.equal(read.complete, true);
    assert.equal(read.lastOffset, c.offset);
  });

  it('is incomplete once older messages were dropped by count, and keeps the newest', async () => {
    const { store } = history();
    const first = await store.append('s', record(0));
    for (let n = 1; n <= 7; n++) await store.append('s', record(n));
    const read = await store.readAfter('s', first.offset, first.epoch, 10);
    assert.equal(read.complete, false);
    assert.deepEqual(
      read.entries.map((e) => e.id),
      ['id-3', 'id-4', 'id-5', 'id-6', 'id-7'],
    );
    // From an offset still covered, the gap is whole.
    const from = read.entries[0]!.offset;
    assert.equal((await store.readAfter('s', from, first.epoch, 10)).complete, true);
  });

  it('keeps exactly the newest maxMessages across many appends, reads and byte bounds included', async () => {
    // Long enough to cross the batched compaction of dropped messages many times.
    const { store } = history({ maxMessages: 50, maxBytes: 50 * 12 + 12 });
    const positions = [];
    for (let n = 0; n < 1000; n++) positions.push(await store.append('s', record(n)));
    for (const from of [0, 949, 950, 990, 999]) {
      const read = await store.readAfter('s', positions[from]!.offset, positions[0]!.epoch, 100);
      const expected = Array.from({ length: 999 - Math.max(from, 949) }, (_, i) => {
        return `id-${Math.max(from, 949) + 1 + i}`;
      });
      assert.deepEqual(
        read.entries.map((e) => e.id),
        expected,
      );
      assert.equal(read.complete, from >= 949, `complete after ${from}`);
      assert.equal(read.lastOffset, positions[999]!.offset);
    }
    // The byte bound counts only what is kept (about 500 bytes), not what was dropped: writing a
    // second stream does not push this one out.
    await store.append('t', record(0));
    const kept = await store.readAfter('s', positions[949]!.offset, positions[0]!.epoch, 100);
    assert.equal(kept.entries.length, 50, 'stream s is still kept whole');
  });

  it('has no last offset once every message aged out', async () => {
    const { store, advance } = history();
    const a = await store.append('s', record(1));
    advance(2000);
    const read = await store.readAfter('s', a.offset, a.epoch, 10);
    assert.deepEqual(read.entries, []);
    assert.equal(read.lastOffset, undefined);
    assert.equal(read.complete, true);
  });

  it('drops messages by age', async () => {
    const { store, advance } = history();
    const first = await store.append('s', record(1));
    await store.append('s', record(2));
    advance(1500);
    const read = await store.readAfter('s', first.offset, first.epoch, 10);
    assert.deepEqual(read.entries, []);
    assert.equal(read.complete, false);
  });

  it('answers another epoch with nothing and complete: false', async () => {
    const { store } = history();
    const first = await store.append('s', record(1));
    const read = await store.readAfter('s', '0', 'other', 10);
    assert.deepEqual(read, {
      epoch: first.epoch,
      lastOffset: first.offset,
      entries: [],
      complete: false,
    });
  });

  it('never reuses offsets of a stream dropped whole, and says a gap over it is incomplete', async () => {
    const { store } = history({ maxStreams: 2 });
    const old = await store.append('a', record(1));
    await store.append('a', record(2)); // dropped with stream a below
    await store.append('b', record(3));
    await store.append('c', record(4)); // stream a goes
    const again = await store.append('a', record(5));
    assert.ok(Number(again.offset) > Number(old.offset) + 1);
    const read = await store.readAfter('a', old.offset, old.epoch, 10);
    assert.equal(read.complete, false);
    assert.deepEqual(
      read.entries.map((e) => e.id),
      ['id-5'],
    );
  });

  it('refuses offsets that are not its own digits', async () => {
    const { store } = history();
    const first = await store.append('s', record(1));
    assert.equal((await store.readAfter('s', '1-0', first.epoch, 10)).complete, false);
  });

  it('keeps at most maxBytes of frames, dropping the least recently written streams', async () => {
    const { store } = history({ maxBytes: 100, maxStreams: 100 });
    const big = { id: 'big', type: 't', frame: 'x'.repeat(40) };
    const a = await store.append('a', big);
    await store.append('b', big);
    await store.append('c', big); // 120 bytes: stream a goes
    const read = await store.readAfter('a', '0', a.epoch, 10);
    assert.deepEqual(read.entries, []);
    assert.equal(read.complete, false);
    assert.equal((await store.readAfter('b', '0', a.epoch, 10)).entries.length, 1);
  });

  it('forgets streams whose every message expired, and still says a gap over them is incomplete', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const { store, advance } = history({ maxAgeMs: 2000 });
    const old = await store.append('idle', record(1));
    advance(2500);
    t.mock.timers.tick(1000); // the sweep runs every maxAgeMs / 2
    const read = await store.readAfter('idle', '0', old.epoch, 10);
    assert.deepEqual(read.entries, []);
    assert.equal(read.complete, false);
    assert.equal(read.lastOffset, undefined, 'the stream itself is gone');
    await store.close();
  });
});
