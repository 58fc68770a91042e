import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  exceedsJsonDepth,
  MAX_ID_LENGTH,
  MAX_JSON_DEPTH,
  MAX_TYPE_LENGTH,
  parseClientMessage,
  type ParseResult,
} from './envelope.js';
import { compareOffsets } from './stream-position.js';

function accepted(text: string) {
  const result = parseClientMessage(text);
  assert.equal(result.ok, true, `expected ${text.slice(0, 80)} to be accepted`);
  return (result as Extract<ParseResult, { ok: true }>).message;
}

function refused(text: string, pattern?: RegExp): string {
  const result = parseClientMessage(text);
  assert.equal(result.ok, false, `expected ${text.slice(0, 80)} to be refused`);
  const failure = result as Extract<ParseResult, { ok: false }>;
  assert.equal(failure.code, 'INVALID_MESSAGE_FORMAT');
  assert.equal(typeof failure.message, 'string');
  if (pattern) assert.match(failure.message, pattern);
  return failure.message;
}

/** A message whose deepest value sits `depth` objects deep, the envelope counting as one. */
function nestedMessage(depth: number): string {
  const inner = depth - 1;
  return `{"type":"x","data":${'{"a":'.repeat(inner)}1${'}'.repeat(inner)}}`;
}

describe('parseClientMessage', () => {
  it('accepts a message with only a type', () => {
    const message = accepted('{"type":"ping"}');
    assert.equal(message.type, 'ping');
    assert.equal(message.data, undefined);
    assert.equal(message.timestamp, undefined);
    assert.equal(message.id, undefined);
  });

  it('accepts and returns type, data, timestamp and id', () => {
    const message = accepted(
      JSON.stringify({
        type: 'subscribe',
        data: { events: ['upload.progress'] },
        timestamp: '2025-01-08T10:30:00Z',
        id: 'msg_124',
      }),
    );
    assert.deepEqual(message, {
      type: 'subscribe',
      data: { events: ['upload.progress'] },
      timestamp: '2025-01-08T10:30:00Z',
      id: 'msg_124',
    });
  });

  it('ignores unknown extra fields', () => {
    const message = accepted('{"type":"ping","extra":[1,2],"data":{}}');
    assert.equal(message.type, 'ping');
    assert.deepEqual(message.data, {});
    assert.equal('extra' in message, false);
  });

  it('refuses text that is not JSON', () => {
    refused('not json', /not valid JSON/);
    refused('', /not valid JSON/);
    refused('{"type":"ping"', /not valid JSON/);
    refused("{'type':'ping'}", /not valid JSON/);
  });

  it('refuses JSON that is not an object', () => {
    for (const text of ['[]', '[{"type":"ping"}]', '"ping"', '42', 'null', 'true']) {
      refused(text, /must be a JSON object/);
    }
  });

  it('refuses a missing, empty or non-string type', () => {
    for (const text of [
      '{}',
      '{"data":{}}',
      '{"type":""}',
      '{"type":42}',
      '{"type":null}',
      '{"type":["ping"]}',
      '{"type":{"name":"ping"}}',
    ]) {
      refused(text, /"type"/);
    }
  });

  it(`accepts a type of ${MAX_TYPE_LENGTH} characters and refuses a longer one as unknown`, () => {
    accepted(JSON.stringify({ type: 't'.repeat(MAX_TYPE_LENGTH) }));
    // A string type not in section 4: INVALID_MESSAGE_TYPE, with the message's id to answer.
    const result = parseClientMessage(
      JSON.stringify({ type: 't'.repeat(MAX_TYPE_LENGTH + 1), id: 'long-1' }),
    );
    assert.deepEqual(result, {
      ok: false,
      code: 'INVALID_MESSAGE_TYPE',
      message: `Unknown message type (longer than ${MAX_TYPE_LENGTH} characters)`,
      id: 'long-1',
    });
  });

  it('refuses data that is not an object', () => {
    for (const data of ['[]', '[1]', 'null', '"x"', '1', 'false']) {
      refused(`{"type":"ping","data":${data}}`, /"data" must be an object/);
    }
  });

  it('refuses a timestamp that is not a string', () => {
    refused('{"type":"ping","timestamp":1736332200}', /"timestamp"/);
    refused('{"type":"ping","timestamp":null}', /"timestamp"/);
  });

  it('refuses an id that is not a string', () => {
    refused('{"type":"ping","id":5}', /"id"/);
    refused('{"type":"ping","id":null}', /"id"/);
    refused('{"type":"ping","id":["a"]}', /"id"/);
  });

  it(`accepts an id of ${MAX_ID_LENGTH} characters and refuses a longer one`, () => {
    assert.equal(
      accepted(JSON.stringify({ type: 'ping', id: 'i'.repeat(MAX_ID_LENGTH) })).id,
      'i'.repeat(MAX_ID_LENGTH),
    );
    refused(JSON.stringify({ type: 'ping', id: 'i'.repeat(MAX_ID_LENGTH + 1) }), /"id"/);
  });

  it('refuses an id with control characters and accepts other unicode', () => {
    for (const id of ['a\nb', 'a\rb', '\u0000', 'tab\there', 'del\u007f']) {
      refused(JSON.stringify({ type: 'ping', id }), /"id"/);
    }
    assert.equal(accepted(JSON.stringify({ type: 'ping', id: 'é-✓-消息' })).id, 'é-✓-消息');
  });

  it('refuses an id with a lone surrogate and accepts a surrogate pair', () => {
    // JSON text may escape half a character; JSON.parse then yields a lone surrogate.
    for (const escaped of ['\\ud800', '\\udfff', 'a\\ud83db', '\\ude00\\ud83d']) {
      refused(`{"type":"ping","id":"${escaped}"}`, /"id"/);
    }
    assert.equal(accepted('{"type":"ping","id":"\\ud83d\\ude00"}').id, '😀');
  });

  it(`accepts nesting of ${MAX_JSON_DEPTH} levels and refuses ${MAX_JSON_DEPTH + 1}`, () => {
    accepted(nestedMessage(MAX_JSON_DEPTH));
    refused(nestedMessage(MAX_JSON_DEPTH + 1), new RegExp(`deeper than ${MAX_JSON_DEPTH}`));
  });

  it('refuses deep nesting that is also invalid JSON before parsing it', () => {
    refused(`{"type":"x","data":${'['.repeat(10_000)}`, /deeper than/);
  });

  it('refuses closing brackets before deep nesting as invalid JSON', () => {
    refused(`${']'.repeat(50)}${'['.repeat(60)}${']'.repeat(60)}`);
  });
});

describe('exceedsJsonDepth', () => {
  it('counts nested objects and arrays', () => {
    assert.equal(exceedsJsonDepth('{}', 1), false);
    assert.equal(exceedsJsonDepth('{"a":{}}', 1), true);
    assert.equal(exceedsJsonDepth('{"a":[]}', 2), false);
    assert.equal(exceedsJsonDepth('{"a":[{}]}', 2), true);
    assert.equal(exceedsJsonDepth('1', 0), false);
    assert.equal(exceedsJsonDepth('[]', 0), true);
  });

  it(`uses ${MAX_JSON_DEPTH} by default`, () => {
    const at = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    assert.equal(exceedsJsonDepth(at(MAX_JSON_DEPTH)), false);
    assert.equal(exceedsJsonDepth(at(MAX_JSON_DEPTH + 1)), true);
  });

  it('measures depth, not the number of brackets', () => {
    assert.equal(exceedsJsonDepth(`[${'[],'.repeat(1000)}[]]`, 2), false);
    assert.equal(exceedsJsonDepth(`{${'"k":{},'.repeat(1000)}"z":{}}`, 2), false);
  });

  it('does not count brackets inside strings', () => {
    assert.equal(exceedsJsonDepth('{"a":"[[[[{{{{"}', 1), false);
    assert.equal(exceedsJsonDepth('{"[[[[":"]]]]{{"}', 1), false);
    assert.equal(exceedsJsonDepth(JSON.stringify({ text: '['.repeat(500) }), 1), false);
  });

  it('does not end a string at an escaped quote', () => {
    // The string is `"[[[[` : the escaped quote keeps the brackets inside it.
    assert.equal(exceedsJsonDepth('{"a":"\\"[[[["}', 1), false);
    assert.equal(exceedsJsonDepth(JSON.stringify({ a: 'say "[[[[" twice "{{{{"' }), 1), false);
  });

  it('ends a string after an escaped backslash', () => {
    // The string is a single backslash; the brackets after it are real.
    const text = '{"a":"\\\\","b":[[1]]}';
    assert.deepEqual(JSON.parse(text), { a: '\\', b: [[1]] });
    assert.equal(exceedsJsonDepth(text, 2), true);
    assert.equal(exceedsJsonDepth(text, 3), false);
  });

  it('agrees with the real depth of messages built by JSON.stringify', () => {
    let value: unknown = 'leaf "[" \\ ]';
    for (let depth = 1; depth <= 40; depth++) {
      value = depth % 2 ? { k: value, s: '}{' } : [value, '\\"['];
      const text = JSON.stringify(value);
      assert.equal(exceedsJsonDepth(text, depth), false, `depth ${depth}`);
      assert.equal(exceedsJsonDepth(text, depth - 1), true, `depth ${depth}`);
    }
  });
});

describe('compareOffsets', () => {
  it('orders offsets part by part as numbers', () => {
    assert.ok(compareOffsets('9', '10') < 0);
    assert.ok(compareOffsets('10', '9') > 0);
    assert.equal(compareOffsets('007', '7'), 0);
    assert.ok(compareOffsets('1700000000000-9', '1700000000000-10') < 0);
    assert.ok(compareOffsets('1700000000001-0', '1700000000000-99') > 0);
    assert.ok(compareOffsets('5', '5-1') < 0);
  });
});
