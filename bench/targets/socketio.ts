/**
 * Target `socketio`: Socket.IO 4, websocket transport only, the JWT checked in a middleware,
 * one room per event and per user.
 */
import { JwtService } from '@nestjs/jwt';
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';
import { keepTriggerConnectionsAlive } from './keep-alive.js';
import { startProbe } from './probe.js';
import { targetEnv } from './target-env.js';
import { type Broadcast, serveBroadcast } from './trigger.js';

const { port, probePort, secret } = targetEnv();
const jwt = new JwtService({ secret });

const rooms = (broadcast: Broadcast): string[] | undefined =>
  broadcast.target?.event
    ? [`event:${broadcast.target.event}`]
    : broadcast.target?.users?.map((user) => `user:${user}`);

const http = createServer((request, response) => {
  const handled = serveBroadcast(request, response, (broadcast) => {
    const payload = { data: broadcast.data, timestamp: new Date().toISOString(), id: randomUUID() };
    const to = rooms(broadcast);
    if (!to) {
      io.emit(broadcast.type, payload);
      return io.engine.clientsCount;
    }
    io.to(to).emit(broadcast.type, payload);
    return to.reduce((n, room) => n + (io.sockets.adapter.rooms.get(room)?.size ?? 0), 0);
  });
  if (!handled) response.writeHead(404).end();
});
keepTriggerConnectionsAlive(http);
const io = new Server(http, { transports: ['websocket'], serveClient: false });

io.use((socket, next) => {
  try {
    const token: unknown = socket.handshake.auth.token;
    const claims = jwt.verify<{ sub: string }>(typeof token === 'string' ? token : '');
    socket.data.user = String(claims.sub);
    next();
  } catch {
    next(new Error('Unauthorized'));
  }
});

io.on('connection', (socket) => {
  void socket.join(`user:${String(socket.data.user)}`);
  socket.on('subscribe', (body: { events?: unknown }, ack: (reply: object) => void) => {
    const events = Array.isArray(body?.events)
      ? body.events.filter((e): e is string => typeof e === 'string')
      : [];
    void socket.join(events.map((event) => `event:${event}`));
    ack({ events, invalid_events: [] });
  });
  socket.on('ping', (ack: (reply: object) => void) => ack({ timestamp: new Date().toISOString() }));
});

http.listen(port, '127.0.0.1', () => void startProbe(probePort));
