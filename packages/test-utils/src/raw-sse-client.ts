import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { withTimeout } from './deferred.js';
import type { RawClientOptions, WireMessage } from './raw-client.js';

/** The fallback's stream URL for a WebSocket URL of the hub: `ws://h/api/ws/updates?q` → `http://h/api/ws-sse/updates?q`. */
export function fallbackStreamUrl(wsUrl: string, path = '/api/ws-sse/updates'): string {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = path;
  return url.toString();
}

/**
 * A bare client of the SSE fallback (a stream plus POSTs), with the same
 * surface as {@link RawTestClient} for protocol-level tests: messages are
 * POSTed one per line, in order, one request at a time; `ping` events are
 * answered unless `answerPings` is false (a dead peer).
 */
export class RawSseTestClient {
  readonly messages: WireMessage[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The session id the server sent in the `open` event. */
  session = '';
  /** The HTTP answers of the POSTs, in order (status and body). */
  readonly posts: Array<{ status: number; body: string }> = [];
  answerPings = true;
  #open = false;
  #base: URL;
  #abort = new AbortController();
  #waiters: Array<{
    predicate: (m: WireMessage) => boolean;
    resolve: (m: WireMessage) => void;
    from: number;
  }> = [];
  #timeoutMs: number;
  #pending: string[] = [];
  #posting: Promise<void> | undefined;
  #resolveClosed: (value: { code: number; reason: string }) => void = () => {};
  #headers: Record<string, string>;

  /** `url` is the hub's WebSocket URL (`ws://…/api/ws/updates?…`) or the stream's own `http://` URL. */
  constructor(url: string, options: RawClientOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#headers = options.headers ?? {};
    const streamUrl = /^wss?:/.test(url) ? fallbackStreamUrl(url) : url;
    this.#base = new URL(streamUrl);
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = (value) => {
        this.#open = false;
        resolve(value);
      };
    });
    this.opened = this.#run(streamUrl, options.localAddress);
    this.opened.catch(() => {});
  }

  /** Opens a client and waits for the server's `connected` message. */
  static async connect(url: string, options?: RawClientOptions): Promise<RawSseTestClient> {
    const client = new RawSseTestClient(url, options);
    await withTimeout(client.opened, client.#timeoutMs, `open of ${url}`);
    await client.waitFor((m) => m.type === 'connected');
    return client;
  }

  /** Whether the stream is open. */
  get isOpen(): boolean {
    return this.#open;
  }

  async #run(streamUrl: string, localAddress?: string): Promise<void> {
    // node:http rather than fetch: a test may pick the local address (the per-address limits).
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpRequest(streamUrl, {
        headers: { accept: 'text/event-stream', ...this.#headers },
        localAddress,
        signal: this.#abort.signal,
      });
      request.on('response', resolve);
      request.on('error', reject);
      request.end();
    });
    response.setEncoding('utf8');
    if (response.statusCode !== 200) {
      let body = '';
      for await (const chunk of response) body += chunk as string;
      this.#resolveClosed({ code: 1006, reason: body });
      throw Object.assign(new Error(`unexpected response ${response.statusCode}: ${body.trim()}`), {
        statusCode: response.statusCode,
      });
    }
    let opened: () => void = () => {};
    const open = new Promise<void>((resolve) => {
      opened = resolve;
    });
    let closeEvent: { code: number; reason: string } | undefined;
    const parser = createParser({
      onEvent: (event: EventSourceMessage) => {
        if (event.event === 'open') {
          this.session = (JSON.parse(event.data) as { session: string }).session;
          this.#open = true;
          opened();
        } else if (event.event === 'ping') {
          if (this.answerPings) void this.#post('/pong', event.data).catch(() => {});
        } else if (event.event === 'close') {
          closeEvent = JSON.parse(event.data) as { code: number; reason: string };
        } else if (event.event === undefined || event.event === 'message') {
          this.#received(JSON.parse(event.data) as WireMessage);
        }
      },
    });
    response.on('data', (chunk: string) => parser.feed(chunk));
    const ended = () => this.#resolveClosed(closeEvent ?? { code: 1006, reason: '' });
    response.on('close', ended);
    response.on('error', ended);
    await open;
  }

  #received(message: WireMessage): void {
    this.messages.push(message);
    const index = this.messages.length - 1;
    for (const waiter of [...this.#waiters]) {
      if (index >= waiter.from && waiter.predicate(message)) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    }
  }

  async #post(suffix: string, body: string): Promise<{ status: number; body: string }> {
    const url = new URL(`/api/ws-sse/sessions/${this.session}${suffix}`, this.#base);
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...this.#headers },
      body,
    });
    return { status: response.status, body: await response.text() };
  }

  /** POSTs a raw body to the session, as is (for tests of bad input); resolves with the answer. */
  postRaw(body: string | Uint8Array, suffix = ''): Promise<{ status: number; body: string }> {
    return this.#post(suffix, body as string);
  }

  /** Sends an object as JSON (or a raw string as is): queued and POSTed in order, batched per request. */
  send(message: unknown): void {
    this.#pending.push(typeof message === 'string' ? message : JSON.stringify(message));
    this.#posting ??= this.#flush();
  }

  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0 && this.#open) {
        const lines = this.#pending.splice(0, 500);
        try {
          this.posts.push(await this.#post('', lines.join('\n')));
        } catch {
          return;
        }
      }
    } finally {
      this.#posting = undefined;
    }
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

  waitForClose(): Promise<{ code: number; reason: string }> {
    return withTimeout(this.closed, this.#timeoutMs, 'close');
  }

  /** Ends the stream (the server sees the client leave). */
  close(): Promise<{ code: number; reason: string }> {
    if (this.#open) this.#abort.abort();
    return this.closed;
  }
}
