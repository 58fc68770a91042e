import { createHmac, createSign } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';

/**
 * Hand-made JWTs for tests that need tokens a library would refuse to sign (alg none, HMAC keyed
 * with a PEM public key) or claims a library would fill in on its own.
 */
export function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function signingInput(header: object, payload: object): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
}

/** `alg: none`, empty signature. */
export function unsignedToken(payload: object): string {
  return `${signingInput({ alg: 'none', typ: 'JWT' }, payload)}.`;
}

/** HS256 with any key material (also a PEM public key, for the HS/RS confusion attack). */
export function hs256Token(payload: object, secret: string): string {
  const input = signingInput({ alg: 'HS256', typ: 'JWT' }, payload);
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** RS256 with a PEM private key. */
export function rs256Token(payload: object, privateKeyPem: string): string {
  const input = signingInput({ alg: 'RS256', typ: 'JWT' }, payload);
  const signature = createSign('RSA-SHA256').update(input).sign(privateKeyPem, 'base64url');
  return `${input}.${signature}`;
}

/** The token strings (and their signatures, which identify them) that occur in `lines`. */
export function leakedTokens(lines: readonly string[], tokens: Iterable<string>): string[] {
  const text = lines.join('\n');
  const leaks: string[] = [];
  for (const token of tokens) {
    const signature = token.split('.')[2] ?? '';
    const needles = [token, encodeURIComponent(token)];
    if (signature.length >= 16) needles.push(signature);
    if (needles.some((needle) => text.includes(needle))) leaks.push(token);
  }
  return leaks;
}

export type UpgradeOutcome =
  | { kind: 'open'; protocol: string }
  | { kind: 'refused'; status: number | undefined; message: string };

/**
 * Tries a raw upgrade and reports whether it was accepted or refused (HTTP status when the
 * server answered one), bounded by `timeoutMs`; an upgrade that hangs is an error.
 */
export async function tryUpgrade(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 3000,
): Promise<UpgradeOutcome> {
  const socket = new WebSocket(url, { headers, handshakeTimeout: timeoutMs });
  let status: number | undefined;
  socket.on('unexpected-response', (_request, response) => {
    status = response.statusCode;
    response.resume();
    socket.terminate();
  });
  const outcome = new Promise<UpgradeOutcome>((resolve) => {
    socket.once('open', () => resolve({ kind: 'open', protocol: socket.protocol }));
    socket.once('error', (error) => resolve({ kind: 'refused', status, message: error.message }));
    socket.once('close', () =>
      resolve({ kind: 'refused', status, message: `closed (HTTP ${status ?? 'none'})` }),
    );
  });
  const timeout = sleep(timeoutMs + 500, 'timeout' as const, { ref: false });
  const result = await Promise.race([outcome, timeout]);
  socket.terminate();
  if (result === 'timeout') throw new Error(`upgrade of ${url} neither opened nor failed`);
  return result;
}
