import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** The body of POST /ws/broadcast, the module's admin API shape that every target accepts. */
export interface Broadcast {
  type: string;
  data: Record<string, unknown>;
  target?: { event?: string; users?: string[] };
}

export function isBroadcast(body: unknown): body is Broadcast {
  if (typeof body !== 'object' || body === null) return false;
  const { type, data } = body as Record<string, unknown>;
  return typeof type === 'string' && typeof data === 'object' && data !== null;
}

/**
 * Serves POST /ws/broadcast on a plain node:http server: `send` delivers and tells how many
 * connections it reached. Answers false when the request is not for this route.
 */
export function serveBroadcast(
  request: IncomingMessage,
  response: ServerResponse,
  send: (broadcast: Broadcast) => number | Promise<number>,
): boolean {
  if (request.method !== 'POST' || request.url !== '/ws/broadcast') return false;
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      body = undefined;
    }
    if (!isBroadcast(body)) return void response.writeHead(400).end();
    void Promise.resolve(send(body)).then(
      (reached) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ status: 'success', data: { connections_reached: reached } }));
      },
      () => response.writeHead(500).end(),
    );
  });
  return true;
}

/**
 * Puts the bare POST /ws/broadcast route in front of a framework's HTTP server (Nest targets):
 * the framework's own listener gets every other request. The trigger is then the same for every
 * target, and what is compared is the realtime layer, not the HTTP stacks.
 */
export function routeBroadcastFirst(
  server: Server,
  send: (broadcast: Broadcast) => number | Promise<number>,
): void {
  const frameworkListeners = server.listeners('request') as Array<
    (request: IncomingMessage, response: ServerResponse) => void
  >;
  server.removeAllListeners('request');
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (serveBroadcast(request, response, send)) return;
    for (const listener of frameworkListeners) listener.call(server, request, response);
  });
}
