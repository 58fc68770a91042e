/**
 * Target `nest-plain`: a NestJS gateway on the stock @nestjs/platform-ws WsAdapter (not this
 * module's), the JWT checked in handleConnection with @nestjs/jwt, broadcasts over
 * server.clients. Its message parser maps the envelope's `type` to Nest's `event`, so that
 * clients speak the same protocol as to the other targets.
 */
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { JwtModule, JwtService } from '@nestjs/jwt';
import { WsAdapter } from '@nestjs/platform-ws';
import {
  ConnectedSocket,
  MessageBody,
  type OnGatewayConnection,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
} from '@nestjs/websockets';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { WebSocket, WebSocketServer as Server } from 'ws';
import { keepTriggerConnectionsAlive } from './keep-alive.js';
import { startProbe } from './probe.js';
import { targetEnv } from './target-env.js';
import { type Broadcast, routeBroadcastFirst } from './trigger.js';
import { type ClientEnvelope, decode, encode, eventsOf } from './wire.js';

const { port, probePort, secret } = targetEnv();

interface Session {
  user: string;
  events: Set<string>;
}

@Injectable()
@WebSocketGateway({ path: '/ws' })
class BenchGateway implements OnGatewayConnection {
  @WebSocketServer() server!: Server;
  private readonly sessions = new WeakMap<WebSocket, Session>();

  constructor(private readonly jwt: JwtService) {}

  handleConnection(client: WebSocket, request: IncomingMessage): void {
    const token = new URL(request.url ?? '/', 'http://localhost').searchParams.get('token');
    let user: string;
    try {
      user = String(this.jwt.verify<{ sub: string }>(token ?? '').sub);
    } catch {
      client.close(4001, 'Unauthorized');
      return;
    }
    this.sessions.set(client, { user, events: new Set() });
    client.send(encode('connection.established', { connection_id: randomUUID(), user_id: user }));
  }

  @SubscribeMessage('ping')
  ping(@ConnectedSocket() client: WebSocket, @MessageBody() message: ClientEnvelope): void {
    client.send(encode('pong', { timestamp: new Date().toISOString() }, message.id));
  }

  @SubscribeMessage('subscribe')
  subscribe(@ConnectedSocket() client: WebSocket, @MessageBody() message: ClientEnvelope): void {
    const events = eventsOf(message);
    for (const event of events) this.sessions.get(client)?.events.add(event);
    client.send(encode('subscription.acknowledged', { events, invalid_events: [] }, message.id));
  }

  send(broadcast: Broadcast): number {
    const frame = encode(broadcast.type, broadcast.data);
    const { event, users } = broadcast.target ?? {};
    let reached = 0;
    for (const client of this.server.clients) {
      const session = this.sessions.get(client);
      if (!session || client.readyState !== client.OPEN) continue;
      if (event && !session.events.has(event)) continue;
      if (users && !users.includes(session.user)) continue;
      client.send(frame);
      reached++;
    }
    return reached;
  }
}

@Module({
  imports: [JwtModule.register({ secret })],
  providers: [BenchGateway],
})
class BenchModule {}

const app = await NestFactory.create(BenchModule, { logger: ['error', 'warn'] });
// The whole envelope is the handler's payload, so that handlers see the message id.
app.useWebSocketAdapter(
  new WsAdapter(app, {
    messageParser: (raw) => {
      const message = decode(raw);
      return message ? { event: message.type, data: message } : undefined;
    },
  }),
);
const server = app.getHttpServer() as HttpServer;
keepTriggerConnectionsAlive(server);
const gateway = app.get(BenchGateway);
routeBroadcastFirst(server, (broadcast) => gateway.send(broadcast));
await app.listen(port, '127.0.0.1');
await startProbe(probePort);
