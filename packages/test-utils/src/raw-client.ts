import { WebSocket } from 'ws';
import { withTimeout } from './deferred.js';

/** A parsed inbound frame. */
export interface WireMessage {
  type: string;
  payload: Record<string, unknown>;
  id?: string | number;
  sequence?: number;
  epoch?: string;
  offset?: number;
  [key: string]: unknown;
}

export interface RawClientOptions {
  headers?: Record<string, string>;
  /** Local address to connect from (127.0.0.x), to spread connections over source IPs. */
  localAddress?: string;
  timeoutMs?: number;
}

/**
 * A bare `ws` client that queues every inbound message, for protocol-level
 * tests: no reconnect, no parsing beyond JSON.
 */
export class RawTestClient {
  readonly messages: WireMessage[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<{
    predicate: (m: WireMessage) => boolean;
    resolve: (m: WireMessage) => void;
    from: number;
  }> = [];
  #timeoutMs: number;

  constructor(url: string, options: RawClientOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.ws = new WebSocket(url, { headers: options.headers, localAddress: options.localAddress });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => {
        reject(
          Object.assign(new Error(`unexpected response ${res.statusCode}`), { statusCode: res.statusCode }),
        );
      });
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const message = JSON.parse(data.toString()) as WireMessage;
      this.messages.push(message);
      const index = this.messages.length - 1;
      for (const waiter of [...this.#waiters]) {
        if (index >= waiter.from && waiter.predicate(message)) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(message);
        }
      }
    });
  }

  /** Opens a client and waits for the server's `connected` message. */
  static async connect(url: string, options?: RawClientOptions): Promise<RawTestClient> {
    const client = new RawTestClient(url, options);
    await withTimeout(client.opened, client.#timeoutMs, `open of ${url}`);
    await client.waitFor((m) => m.type === 'connected');
    return client;
  }

  /** Sends an object as JSON (or a raw string / buffer as is). */
  send(message: unknown): void {
    this.ws.send(typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message));
  }

  /** Resolves with the first message (already received or future) that satisfies `predicate`. */
  waitFor(
    predicate: (m: WireMessage) => boolean,
    options: { from?: number; what?: string } = {},
  ): Promise<WireMessage> {
    const from = options.from ?? 0;
    const found = this.messages.slice(from).find(predicate);
    if (found) return Promise.resolve(found);
    const promise = new Promise<WireMessage>((resolve) => {
      this.#waiters.push({ predicate, resolve, from });
    });
    return withTimeout(promise, this.#timeoutMs, options.what ?? 'a matching message');
  }

  /** Sends a request with an `id` and resolves with the reply carrying that `id`. */
  async request(type: string, payload?: unknown): Promise<WireMessage> {
    const id = `r${Math.random().toString(36).slice(2)}`;
    const from = this.messages.length;
    this.send(payload === undefined ? { type, id } : { type, id, payload });
    return this.waitFor((m) => m.id === id, { from, what: `reply to ${type} ${id}` });
  }

  /** Waits until `count` data messages (those with a `sequence`) have arrived. */
  async waitForData(count: number): Promise<WireMessage[]> {
    const data = () => this.messages.filter((m) => typeof m.sequence === 'number');
    if (data().length < count) {
      await this.waitFor(() => data().length >= count, {
        what: `${count} data messages (have ${data().length})`,
      });
    }
    return data();
  }

  /** Data messages received so far. */
  data(): WireMessage[] {
    return this.messages.filter((m) => typeof m.sequence === 'number');
  }

  /** Whether the socket is open. */
  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  waitForClose(): Promise<{ code: number; reason: string }> {
    return withTimeout(this.closed, this.#timeoutMs, 'close');
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.CLOSED) return this.closed;
    this.ws.close();
    return this.closed;
  }
}
