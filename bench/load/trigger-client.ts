/**
 * The broadcast trigger as the load fires it: POST /ws/broadcast over a keep-alive agent, at most
 * `window` requests in flight. The same for every target, so that a server that coalesces writes
 * of a burst can show it.
 */
import { Agent, request } from 'node:http';
import { STEP_TIMEOUT_MS } from '../lib/processes.js';
import { windowed } from '../lib/windowed.js';

export const TRIGGER_WINDOW = 16;

export class Trigger {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: TRIGGER_WINDOW });

  constructor(
    private readonly port: number,
    private readonly authorization: string,
  ) {}

  /** One POST; resolves when 2xx, else rejects with the status and body. */
  post(body: object): Promise<void> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const call = request(
        {
          host: '127.0.0.1',
          port: this.port,
          path: '/ws/broadcast',
          method: 'POST',
          agent: this.agent,
          timeout: STEP_TIMEOUT_MS,
          headers: {
            authorization: this.authorization,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve();
            reject(
              new Error(
                `broadcast answered ${status}: ${Buffer.concat(chunks).toString().slice(0, 300)}`,
              ),
            );
          });
        },
      );
      call.on('timeout', () => call.destroy(new Error('broadcast request timed out')));
      call.on('error', reject);
      call.end(payload);
    });
  }

  /** Sends `count` bodies, `TRIGGER_WINDOW` in flight. */
  async burst(count: number, body: (i: number) => object): Promise<void> {
    await windowed(count, TRIGGER_WINDOW, (i) => this.post(body(i)));
  }

  close(): void {
    this.agent.destroy();
  }
}
