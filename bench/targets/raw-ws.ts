/**
 * Target `raw-ws`: the floor. A bare ws 8 server, no auth (the user id comes from ?user=), one
 * pre-serialized string per broadcast, `send` per client.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { keepTriggerConnectionsAlive } from './keep-alive.js';
import { startProbe } from './probe.js';
import { targetEnv } from './target-env.js';
import { type Broadcast, serveBroadcast } from './trigger.js';
import { decode, encode, eventsOf } from './wire.js';

const { port, probePort } = targetEnv();
const events = new Map<string, Set<WebSocket>>();
const users = new Map<string, Set<WebSocket>>();

function add(index: Map<string, Set<WebSocket>>, key: string, socket: WebSocket): void {
  let members = index.get(key);
  if (!members) index.set(key, (members = new Set()));
  members.add(socket);
}

function remove(index: Map<string, Set<WebSocket>>, key: string, socket: WebSocket): void {
  const members = index.get(key);
  members?.delete(socket);
  if (members?.size === 0) index.delete(key);
}

function recipients(broadcast: Broadcast): Iterable<WebSocket> {
  if (broadcast.target?.event) return events.get(broadcast.target.event) ?? [];
  if (broadcast.target?.users)
    return broadcast.target.users.flatMap((user) => [...(users.get(user) ?? [])]);
  return wss.clients;
}

const http = createServer((request, response) => {
  const handled = serveBroadcast(request, response, (broadcast) => {
    const frame = encode(broadcast.type, broadcast.data);
    let reached = 0;
    for (const socket of recipients(broadcast)) {
      if (socket.readyState !== WebSocket.OPEN) continue;
      socket.send(frame);
      reached++;
    }
    return reached;
  });
  if (!handled) response.writeHead(404).end();
});
keepTriggerConnectionsAlive(http);
const wss = new WebSocketServer({ server: http, path: '/ws' });

wss.on('connection', (socket, request) => {
  const user = new URL(request.url ?? '/', 'http://localhost').searchParams.get('user') ?? '';
  const subscribed = new Set<string>();
  add(users, user, socket);
  socket.send(encode('connection.established', { connection_id: randomUUID(), user_id: user }));
  socket.on('message', (raw) => {
    const message = decode(raw);
    if (message?.type === 'ping') {
      socket.send(encode('pong', { timestamp: new Date().toISOString() }, message.id));
    } else if (message?.type === 'subscribe') {
      const names = eventsOf(message);
      for (const name of names) {
        subscribed.add(name);
        add(events, name, socket);
      }
      socket.send(
        encode('subscription.acknowledged', { events: names, invalid_events: [] }, message.id),
      );
    }
  });
  socket.on('close', () => {
    remove(users, user, socket);
    for (const name of subscribed) remove(events, name, socket);
  });
});

http.listen(port, '127.0.0.1', () => void startProbe(probePort));
