import { EventEmitter } from 'eventemitter3';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { SocketHandlers, WebSocketConstructor, WebSocketLike } from './websocket.js';

/** The transports a client may use: WebSocket, or the SSE + POST fallback. */
export type Transport = 'websocket' | 'sse';

/** Options of {@link createFallback}; every one is optional. */
export interface FallbackOptions {
  /** The WebSocket to try first; Node 20 has no global one: pass `WebSocket` from `ws`. @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor;
  /**
   * How long a WebSocket may take to deliver the server's first frame (the `connected` greeting)
   * before the fallback is used instead: an upgrade that fails, or stalls behind a proxy. ms. @default 4000
   */
  timeout?: number;
  /**
   * After falling back, connects use SSE directly; the first connect this long (ms) after the fallback
   * tries WebSocket again (a proxy may have been fixed, or the client moved networks). `Infinity`: never.
   * @default 300000
   */
  retryWebSocketAfter?: number;
  /** Path of the SSE stream on the hub's host. @default '/api/ws-sse/updates' */
  streamPath?: string;
  /** Path prefix of a session's POSTs. @default '/api/ws-sse/sessions' */
  sessionsPath?: string;
  /** The `fetch` to use. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Events of a {@link Fallback}. */
export interface FallbackEvents {
  /** The transport of a new connection, when it differs from the previous one's. */
  transport: (transport: Transport) => void;
}

type Socket = WebSocketLike & SocketHandlers;

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/**
 * Chooses the transport of every connect of an `ATPWebSocket`: WebSocket
 * first, the SSE fallback when the upgrade fails or stalls. Pass its
 * `WebSocket` to the client; read `transport`, or listen to `transport`.
 *
 * @example
 * import { ATPWebSocket } from '@atp/ws-client';
 * import { createFallback } from '@atp/ws-client/fallback';
 *
 * const fallback = createFallback({ timeout: 3000 });
 * fallback.on('transport', (transport) => console.log('now over', transport));
 * const ws = new ATPWebSocket({ WebSocket: fallback.WebSocket });
 */
export class Fallback extends EventEmitter<FallbackEvents> {
  /** The transport of the current (or last) connection; `undefined` before the first one is decided. */
  transport: Transport | undefined;
  /** A WebSocket constructor for `ATPWebSocket`'s `WebSocket` option. */
  readonly WebSocket: WebSocketConstructor;
  /** When the fallback was last used because WebSocket failed (ms since the epoch). */
  fellBackAt: number | undefined;
  readonly #options: Required<Omit<FallbackOptions, 'WebSocket' | 'fetch'>> & FallbackOptions;

  constructor(options: FallbackOptions = {}) {
    super();
    this.#options = {
      timeout: 4000,
      retryWebSocketAfter: 300_000,
      streamPath: '/api/ws-sse/updates',
      sessionsPath: '/api/ws-sse/sessions',
      ...options,
    };
    const owner = this;
    this.WebSocket = class {
      constructor(url: string, protocols?: string | string[]) {
        // biome-ignore lint/correctness/noConstructorReturn: the constructor hands out the switching socket.
        return new SwitchingSocket(owner, owner.#options, url, protocols);
      }
    } as unknown as WebSocketConstructor;
  }

  /** Whether the next connect goes straight to SSE (WebSocket failed recently). */
  get preferFallback(): boolean {
    const at = this.fellBackAt;
    return at !== undefined && Date.now() - at < this.#options.retryWebSocketAfter;
  }

  /** @internal A connection settled on `transport`. */
  settled(transport: Transport, fellBack: boolean): void {
    if (fellBack) this.fellBackAt = Date.now();
    if (transport === 'websocket') this.fellBackAt = undefined;
    if (this.transport === transport) return;
    this.transport = transport;
    this.emit('transport', transport);
  }
}

/** Creates a {@link Fallback}. */
export function createFallback(options: FallbackOptions = {}): Fallback {
  return new Fallback(options);
}

/** One connection: a WebSocket until it fails or stalls before its first frame, then the SSE stream. */
class SwitchingSocket implements WebSocketLike, SocketHandlers {
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  #state = CONNECTING;
  #ws: Socket | undefined;
  #sse: SseConnection | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The client closed it: a WebSocket attempt it gave up on must not fall back to SSE. */
  #closing = false;

  constructor(
    readonly owner: Fallback,
    readonly options: FallbackOptions & { timeout: number; streamPath: string; sessionsPath: string },
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (owner.preferFallback || typeof Ctor !== 'function') this.#startSse(false);
    else this.#startWebSocket(Ctor);
  }

  get readyState(): number {
    if (this.#ws) return this.#ws.readyState;
    return this.#state;
  }

  send(data: string): void {
    if (this.#ws) this.#ws.send(data);
    else this.#sse?.send(data);
  }

  close(code?: number, reason?: string): void {
    clearTimeout(this.#timer);
    this.#closing = true;
    if (this.#ws) {
      this.#ws.close(code, reason);
      return;
    }
    this.#sse?.end();
    this.#closed({ code: code ?? 1005, reason: reason ?? '' });
  }

  terminate(): void {
    const ws = this.#ws;
    if (ws?.terminate) {
      clearTimeout(this.#timer);
      this.#closing = true;
      ws.terminate();
    } else this.close();
  }

  #startWebSocket(Ctor: WebSocketConstructor): void {
    let ws: Socket;
    try {
      ws = (this.protocols === undefined ? new Ctor(this.url) : new Ctor(this.url, this.protocols)) as Socket;
    } catch {
      this.#startSse(true);
      return;
    }
    this.#ws = ws;
    let settled = false;
    const giveUp = () => {
      if (settled) return;
      settled = true;
      clearTimeout(this.#timer);
      this.#ws = undefined;
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = () => {};
      try {
        if (ws.terminate) ws.terminate();
        else ws.close();
      } catch {
        // Already closing.
      }
      this.#startSse(true);
    };
    this.#timer = setTimeout(giveUp, this.options.timeout);
    ws.onopen = (event) => this.onopen?.(event);
    ws.onmessage = (event) => {
      if (!settled) {
        settled = true;
        clearTimeout(this.#timer);
        this.owner.settled('websocket', false);
      }
      this.onmessage?.(event);
    };
    ws.onerror = (event) => {
      if (settled) this.onerror?.(event);
    };
    ws.onclose = (event) => {
      // Closed before the greeting: the upgrade was refused, dropped or broken on the way (unless
      // the client closed it: then a fallback would be a second connection, taking its session over).
      if (!settled && !this.#closing) giveUp();
      else this.onclose?.(event);
    };
  }

  #startSse(fellBack: boolean): void {
    this.owner.settled('sse', fellBack);
    this.#sse = new SseConnection(this.url, this.options, {
      open: () => {
        this.#state = OPEN;
        this.onopen?.({});
      },
      message: (data) => this.onmessage?.({ data }),
      error: (event) => this.onerror?.(event),
      close: (event) => this.#closed(event),
    });
  }

  #closed(event: { code: number; reason: string }): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    const onclose = this.onclose;
    // Asynchronous, as a WebSocket's close event is.
    setTimeout(() => onclose?.(event), 0);
  }
}

interface SseHandlers {
  open(): void;
  message(data: string): void;
  error(event: { message: string }): void;
  close(event: { code: number; reason: string }): void;
}

/**
 * The SSE fallback's client side: the stream (read with `fetch`, so it stops
 * for good when it ends: the client reconnects and resumes itself), and the
 * POSTs, one at a time in order, batching what was sent meanwhile.
 */
class SseConnection {
  readonly #abort = new AbortController();
  readonly #fetch: typeof fetch;
  readonly #handlers: SseHandlers;
  readonly #stream: URL;
  #sessionUrl: string | undefined;
  #pending: string[] = [];
  #posting = false;
  #ended = false;
  #closeEvent: { code: number; reason: string } | undefined;

  constructor(
    url: string,
    options: FallbackOptions & { streamPath: string; sessionsPath: string },
    handlers: SseHandlers,
  ) {
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#handlers = handlers;
    const stream = new URL(url);
    stream.protocol = stream.protocol === 'wss:' ? 'https:' : 'http:';
    stream.pathname = options.streamPath;
    this.#stream = stream;
    void this.#run(options.sessionsPath);
  }

  send(data: string): void {
    if (this.#ended) return;
    this.#pending.push(data);
    if (!this.#posting) void this.#flush();
  }

  end(): void {
    this.#ended = true;
    this.#abort.abort();
  }

  async #run(sessionsPath: string): Promise<void> {
    try {
      const response = await this.#fetch(this.#stream, {
        headers: { accept: 'text/event-stream' },
        signal: this.#abort.signal,
      });
      if (response.status !== 200 || !response.body) {
        // The text `refusedStatus` reads, as `ws` words a refused upgrade.
        this.#handlers.error({ message: `Unexpected server response: ${response.status}` });
        this.#finish({ code: 1006, reason: '' });
        return;
      }
      const parser = createParser({
        onEvent: (event: EventSourceMessage) => {
          if (event.event === 'open') {
            const { session } = JSON.parse(event.data) as { session: string };
            this.#sessionUrl = new URL(`${sessionsPath}/${session}`, this.#stream).toString();
            this.#handlers.open();
          } else if (event.event === 'ping') {
            void this.#post('/pong', event.data);
          } else if (event.event === 'close') {
            this.#closeEvent = JSON.parse(event.data) as { code: number; reason: string };
          } else if (event.event === undefined || event.event === 'message') {
            this.#handlers.message(event.data);
          }
        },
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
      this.#finish(this.#closeEvent ?? { code: 1006, reason: '' });
    } catch (error) {
      if (!this.#ended) this.#handlers.error({ message: String((error as Error)?.message ?? error) });
      this.#finish(this.#closeEvent ?? { code: 1006, reason: '' });
    }
  }

  #finish(event: { code: number; reason: string }): void {
    if (this.#ended && event.code === 1006) {
      this.#handlers.close(event);
      return;
    }
    this.#ended = true;
    this.#abort.abort();
    this.#handlers.close(event);
  }

  async #flush(): Promise<void> {
    this.#posting = true;
    try {
      while (this.#pending.length > 0 && !this.#ended) {
        const lines = this.#pending.splice(0, this.#pending.length);
        const response = await this.#post('', lines.join('\n'));
        // A refused POST (unknown session, too large) means the stream is over or about to be.
        if (!response || response.status >= 400) {
          this.end();
          return;
        }
      }
    } finally {
      this.#posting = false;
    }
  }

  async #post(suffix: string, body: string): Promise<Response | undefined> {
    if (!this.#sessionUrl) return undefined;
    try {
      return await this.#fetch(`${this.#sessionUrl}${suffix}`, {
        method: 'POST',
        // text/plain: a simple request, with no CORS preflight.
        headers: { 'content-type': 'text/plain;charset=UTF-8' },
        body,
      });
    } catch {
      return undefined;
    }
  }
}
