import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { HmacSha256 } from './hmac-sha256.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const native = (key: Uint8Array, text: string) =>
  createHmac('sha256', key).update(text, 'latin1').digest();

/** Printable ASCII, as a JWT's signing input is (base64url and '.'), and then some. */
const asciiText = (maxLength: number) =>
  fc
    .array(fc.integer({ min: 0x20, max: 0x7e }), { maxLength })
    .map((codes) => String.fromCharCode(...codes));

describe('HmacSha256', () => {
  it('gives RFC 4231 answers, a key longer than a block included', () => {
    const cases: [Buffer, string, string][] = [
      [
        Buffer.alloc(20, 0x0b),
        'Hi There',
        'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
      ],
      [
        Buffer.from('Jefe'),
        'what do ya want for nothing?',
        '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      ],
      [
        Buffer.alloc(131, 0xaa),
        'Test Using Larger Than Block-Size Key - Hash Key First',
        '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
      ],
    ];
    for (const [key, text, expected] of cases) {
      assert.equal(hex(new HmacSha256(key).digest(text)), expected);
    }
  });

  it("equals node:crypto's HMAC at every padding boundary", () => {
    const key = Buffer.from('boundary key');
    const hmac = new HmacSha256(key);
    // 55/56 and 119/120: where the length stops fitting in the message's last block.
    for (const length of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 500]) {
      const text = 'x'.repeat(length);
      assert.equal(hex(hmac.digest(text)), native(key, text).toString('hex'), `length ${length}`);
    }
    // A key of a block's length is used as it is; one byte more and it is hashed first.
    for (const length of [0, 1, 63, 64, 65]) {
      const longKey = Buffer.alloc(length, 0x5a);
      const got = hex(new HmacSha256(longKey).digest('text'));
      assert.equal(got, native(longKey, 'text').toString('hex'), `key length ${length}`);
    }
  });

  it("equals node:crypto's HMAC for any key and ASCII text, reusing one instance", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.array(asciiText(300), { minLength: 1, maxLength: 3 }),
        (key, texts) => {
          const hmac = new HmacSha256(key);
          for (const text of texts) {
            assert.equal(hex(hmac.digest(text)), native(key, text).toString('hex'));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('matches its base64url signature and nothing else', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 80 }),
        asciiText(200),
        fc.nat(),
        (key, text, n) => {
          const hmac = new HmacSha256(key);
          const signature = native(key, text).toString('base64url');
          assert.equal(hmac.matches(text, signature), true);
          // Any other character at any place.
          const at = n % signature.length;
          const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
          const other = alphabet[(alphabet.indexOf(signature[at]!) + 1 + (n % 63)) % 64]!;
          const changed = signature.slice(0, at) + other + signature.slice(at + 1);
          assert.equal(hmac.matches(text, changed), false);
          assert.equal(hmac.matches(text, signature.slice(0, -1)), false);
          assert.equal(hmac.matches(text, `${signature}A`), false);
          assert.equal(hmac.matches(`${text}.`, signature), false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses a last character with its spare bits set, as jwa compares the text', () => {
    const key = Buffer.from('spare bits');
    const signature = native(key, 'a.b').toString('base64url');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // The 43rd character carries 4 bits and 2 spare ones: the same bytes, other text.
    const last = alphabet.indexOf(signature[42]!);
    const spare = signature.slice(0, 42) + alphabet[last | 1]!;
    assert.deepEqual(Buffer.from(spare, 'base64url'), Buffer.from(signature, 'base64url'));
    assert.equal(new HmacSha256(key).matches('a.b', spare), false);
  });
});
