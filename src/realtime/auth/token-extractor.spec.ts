import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  extractToken,
  parseProtocols,
  pathToken,
  queryParam,
  requestTarget,
} from './token-extractor.js';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl';
const OTHER = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI3In0.b3RoZXI';

function request(url: string, headers: Record<string, string> = {}): IncomingMessage {
  return { url, headers } as unknown as IncomingMessage;
}

describe('extractToken', () => {
  describe('each source', () => {
    it('reads Authorization: Bearer <jwt>', () => {
      assert.deepEqual(extractToken(request('/ws', { authorization: `Bearer ${JWT}` }), '/ws'), {
        source: 'authorization',
        token: JWT,
      });
    });

    it('accepts the scheme in any case and surrounding spaces', () => {
      for (const header of [`bearer ${JWT}`, `BEARER   ${JWT}`, `Bearer ${JWT}  `]) {
        assert.equal(extractToken(request('/ws', { authorization: header }), '/ws')?.token, JWT);
      }
    });

    it('reads Sec-WebSocket-Protocol: bearer, <jwt>', () => {
      const req = request('/ws', { 'sec-websocket-protocol': `bearer, ${JWT}` });
      assert.deepEqual(extractToken(req, '/ws'), { source: 'subprotocol', token: JWT });
    });

    it('finds bearer among other subprotocols', () => {
      const req = request('/ws', { 'sec-websocket-protocol': `chat.v2, bearer,${JWT}` });
      assert.deepEqual(extractToken(req, '/ws'), { source: 'subprotocol', token: JWT });
    });

    it('reads ?token=<jwt>', () => {
      assert.deepEqual(extractToken(request(`/ws?token=${JWT}`), '/ws'), {
        source: 'query',
        token: JWT,
      });
      assert.equal(extractToken(request(`/ws?x=1&token=${JWT}&y=2`), '/ws')?.token, JWT);
    });

    it('reads the /ws/<jwt> path segment', () => {
      assert.deepEqual(extractToken(request(`/ws/${JWT}`), '/ws'), {
        source: 'path',
        token: JWT,
      });
    });

    it('reads the path segment under a longer or root base path', () => {
      assert.equal(extractToken(request(`/api/rt/${JWT}`), '/api/rt')?.token, JWT);
      assert.equal(extractToken(request(`/${JWT}`), '/')?.token, JWT);
    });

    it('decodes a URL-encoded path token', () => {
      assert.deepEqual(extractToken(request('/ws/a%2Eb%2Dc%20d'), '/ws'), {
        source: 'path',
        token: 'a.b-c d',
      });
    });

    it('decodes a URL-encoded query token', () => {
      assert.equal(extractToken(request('/ws?token=a%2Eb%2Bc'), '/ws')?.token, 'a.b+c');
    });

    it('finds nothing when no source is present', () => {
      assert.equal(extractToken(request('/ws'), '/ws'), undefined);
      assert.equal(extractToken(request('/ws/'), '/ws'), undefined);
      assert.equal(extractToken(request('/ws?other=1'), '/ws'), undefined);
      assert.equal(
        extractToken(request('/ws', { 'sec-websocket-protocol': 'chat' }), '/ws'),
        undefined,
      );
    });

    it('does not take a segment of another path, or a deeper one', () => {
      assert.equal(extractToken(request(`/wsx/${JWT}`), '/ws'), undefined);
      assert.equal(extractToken(request(`/other/${JWT}`), '/ws'), undefined);
      assert.equal(extractToken(request(`/ws/a/${JWT}`), '/ws'), undefined);
    });
  });

  describe('precedence', () => {
    const all = {
      authorization: `Bearer ${JWT}`,
      'sec-websocket-protocol': `bearer, ${OTHER}`,
    };

    it('takes Authorization over every other source', () => {
      const found = extractToken(request(`/ws/path-token?token=query-token`, all), '/ws');
      assert.deepEqual(found, { source: 'authorization', token: JWT });
    });

    it('takes the subprotocol over query and path', () => {
      const req = request('/ws/path-token?token=query-token', {
        'sec-websocket-protocol': `bearer, ${OTHER}`,
      });
      assert.deepEqual(extractToken(req, '/ws'), { source: 'subprotocol', token: OTHER });
    });

    it('takes the query over the path', () => {
      assert.deepEqual(extractToken(request('/ws/path-token?token=query-token'), '/ws'), {
        source: 'query',
        token: 'query-token',
      });
    });
  });

  describe('a malformed first source decides, with no token', () => {
    it('a malformed Authorization header is not replaced by lower sources', () => {
      for (const header of ['', 'Bearer', 'Bearer ', `Basic ${JWT}`, `Bearer ${JWT} extra`, JWT]) {
        const req = request(`/ws/${OTHER}?token=${OTHER}`, {
          authorization: header,
          'sec-websocket-protocol': `bearer, ${OTHER}`,
        });
        assert.deepEqual(
          extractToken(req, '/ws'),
          { source: 'authorization', token: undefined },
          JSON.stringify(header),
        );
      }
    });

    it('bearer offered without a token is not replaced by lower sources', () => {
      for (const header of ['bearer', 'bearer,', 'chat, bearer', 'bearer, , ']) {
        const req = request(`/ws/${OTHER}?token=${OTHER}`, { 'sec-websocket-protocol': header });
        assert.deepEqual(
          extractToken(req, '/ws'),
          { source: 'subprotocol', token: undefined },
          header,
        );
      }
    });

    it('an empty ?token= is not replaced by the path', () => {
      assert.deepEqual(extractToken(request(`/ws/${OTHER}?token=`), '/ws'), {
        source: 'query',
        token: undefined,
      });
    });

    it('a path token that cannot be decoded yields no token', () => {
      assert.deepEqual(extractToken(request('/ws/%E0%A4%A'), '/ws'), {
        source: 'path',
        token: undefined,
      });
    });
  });
});

describe('queryParam', () => {
  it('answers as URLSearchParams.get does', () => {
    const cases = [
      '',
      '?',
      '?token',
      '?token=',
      '?a=1&token=x&token=y',
      '?&&token=a=b',
      '?tok=1',
      '?%74oken=z',
      '?token=a+b',
      '?token=%zz',
      '?x=1&=2',
    ];
    for (const search of cases) {
      assert.equal(queryParam(search, 'token'), new URLSearchParams(search).get('token'), search);
    }
  });

  it('answers as URLSearchParams.get does for any query (fast-check)', () => {
    const part = fc.constantFrom('token', 'tok', 'en', '=', '&', '%', '+', '74', 'x', '?', 'é', '');
    fc.assert(
      fc.property(fc.array(part, { maxLength: 12 }), (parts) => {
        const search = parts.join('');
        assert.equal(queryParam(search, 'token'), new URLSearchParams(search).get('token'));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('requestTarget', () => {
  /** What the WHATWG URL parser makes of a request URL: the reference. */
  function parsed(url: string): { pathname: string; search: string } | undefined {
    try {
      const { pathname, search } = new URL(url, 'http://localhost');
      return { pathname, search };
    } catch {
      return undefined;
    }
  }

  it('answers as new URL does, by hand or through URL', () => {
    const cases = [
      '/ws',
      '/ws?token=a.b-c_d~e&user=7',
      '/ws?',
      '/',
      '',
      '/ws/',
      '/ws//x',
      '//evil/ws',
      '/ws/./x',
      '/ws/../ws',
      '/.well-known',
      '/ws?token=a b',
      '/ws?token=%41',
      '/w s',
      '/ws#frag',
      '/ws?token=a#frag',
      '/ws\\x',
      'http://other/ws?token=x',
      '/ws?token=é',
      'http://[::1',
    ];
    for (const url of cases) assert.deepEqual(requestTarget(request(url)), parsed(url), url);
  });

  it('answers as new URL does for any target (fast-check)', () => {
    const part = fc.constantFrom('/', 'ws', '.', '..', '?', '&', '=', '%', '%2e', '#', ' ', '\\');
    const more = fc.constantFrom('~', '-', '_', 'é', ':', '@', '+', 'token', 'a.b');
    fc.assert(
      fc.property(fc.array(fc.oneof(part, more), { maxLength: 10 }), (parts) => {
        const url = parts.join('');
        assert.deepEqual(requestTarget(request(url)), parsed(url));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('parseProtocols', () => {
  it('splits, trims and drops empty entries', () => {
    assert.deepEqual(parseProtocols(' bearer ,  tok ,, chat '), ['bearer', 'tok', 'chat']);
    assert.deepEqual(parseProtocols(undefined), []);
    assert.deepEqual(parseProtocols(''), []);
  });
});

describe('pathToken', () => {
  it('returns the last segment under the base path', () => {
    assert.equal(pathToken('/ws/abc', '/ws'), 'abc');
    assert.equal(pathToken('/ws', '/ws'), undefined);
    assert.equal(pathToken('/ws/', '/ws'), undefined);
    assert.equal(pathToken('/ws/a/b', '/ws'), undefined);
    assert.equal(pathToken('/x/abc', '/ws'), undefined);
    assert.equal(pathToken('/abc', '/'), 'abc');
  });
});
