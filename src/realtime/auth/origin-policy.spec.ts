import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OriginPolicy } from './origin-policy.js';

describe('OriginPolicy', () => {
  const policy = new OriginPolicy(['https://app.example.com', 'http://localhost:3000']);

  it('allows an origin that matches an entry exactly', () => {
    assert.equal(policy.allows('https://app.example.com'), true);
    assert.equal(policy.allows('http://localhost:3000'), true);
  });

  it('refuses an origin that differs in scheme, host or port', () => {
    for (const origin of [
      'http://app.example.com',
      'https://evil.example.com',
      'https://app.example.com.evil.com',
      'https://example.com',
      'https://app.example.com:8443',
      'http://localhost:3001',
      'http://localhost',
      'http://127.0.0.1:3000',
      'null',
      '',
    ]) {
      assert.equal(policy.allows(origin), false, origin);
    }
  });

  it('compares scheme and host without regard to case', () => {
    assert.equal(policy.allows('HTTPS://APP.EXAMPLE.COM'), true);
    assert.equal(policy.allows('http://LocalHost:3000'), true);
    assert.equal(
      new OriginPolicy(['https://App.Example.com']).allows('https://app.example.com'),
      true,
    );
  });

  it('ignores a trailing slash on the entry or the origin', () => {
    assert.equal(
      new OriginPolicy(['https://app.example.com/']).allows('https://app.example.com'),
      true,
    );
    assert.equal(policy.allows('https://app.example.com/'), true);
  });

  it('does not accept a path as a prefix match', () => {
    assert.equal(policy.allows('https://app.example.com/path'), false);
  });

  it('allows every origin when the list is empty', () => {
    const open = new OriginPolicy([]);
    for (const origin of ['https://anything.example', 'null', 'http://localhost:1']) {
      assert.equal(open.allows(origin), true, origin);
    }
  });

  it('allows a request without Origin (not a browser)', () => {
    assert.equal(policy.allows(undefined), true);
    assert.equal(new OriginPolicy([]).allows(undefined), true);
  });
});

describe('OriginPolicy default ports', () => {
  it('treats an explicit default port as the same origin, both ways', () => {
    const policy = new OriginPolicy(['https://app.example.com:443', 'http://plain.example.com']);
    assert.equal(policy.allows('https://app.example.com'), true);
    assert.equal(policy.allows('http://plain.example.com:80'), true);
  });

  it('keeps a non-default port distinct', () => {
    const policy = new OriginPolicy(['http://app.example.com']);
    assert.equal(policy.allows('http://app.example.com:443'), false);
    assert.equal(policy.allows('http://app.example.com:8080'), false);
  });
});
