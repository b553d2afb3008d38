import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';

/** Transports a client connection may use. */
export type Transport = 'websocket' | 'sse';

/** `readyState` values, as `ws` numbers them. */
const OPEN = 1;
const CLOSED = 3;

/**
 * A connection carried by a Server-Sent Events stream (server to client) and
 * HTTP POSTs (client to server), with the small part of a `ws` WebSocket the
 * hub's connection code uses: `send` with a flush callback (what the outbound
 * buffer counts), `close(code, reason)`, `terminate`, `ping` (answered by a
 * POST of its payload), and `message` / `pong` / `close` events. The protocol,
 * its sequence numbers, limits and heartbeat stay in that one place.
 *
 * On the stream, each protocol frame is one `message` event whose `data` is
 * the frame's JSON; `ping` events carry the heartbeat payload in hex; a
 * `close` event carries `{ code, reason }` before the stream ends.
 */
export class FallbackSocket extends EventEmitter {
  readonly transport: Transport = 'sse';
  /** Never an extension: frames always go through {@link FallbackSocket.send}. */
  readonly extensions = '';
  readonly OPEN = OPEN;
  readyState = OPEN;
  /** Largest message in bytes (the hub's `maxPayload`); a bigger one closes the connection with 1009. */
  maxPayload = Number.POSITIVE_INFINITY;
  readonly #response: ServerResponse;
  readonly #keepAliveMs: number;
  #keepAlive: NodeJS.Timeout | undefined;

  constructor(
    response: ServerResponse,
    /** Identifies the stream in the URLs of its POSTs. */
    readonly sessionId: string,
    keepAliveMs: number,
  ) {
    super();
    this.#response = response;
    // The stream's end (the client left, a proxy cut it) ends the connection, as a dropped TCP socket would.
    response.on('close', () => this.#closed(1006, ''));
    response.on('error', () => this.#closed(1006, ''));
    this.#keepAliveMs = keepAliveMs;
  }

  /** Writes one frame as a `message` event; `callback` runs once it is handed to the kernel. */
  send(data: Buffer | string, _options?: unknown, callback?: (error?: Error | null) => void): void {
    if (this.readyState !== OPEN) {
      callback?.(new Error('the stream is closed'));
      return;
    }
    const text = typeof data === 'string' ? data : data.toString('utf8');
    this.#write(`data: ${text}\n\n`, callback);
  }

  /** Heartbeat: the client answers by POSTing the payload back (see the fallback router). */
  ping(data: Buffer): void {
    this.#write(`event: ping\ndata: ${data.toString('hex')}\n\n`);
  }

  /** WebSocket ping frames do not exist on this transport: nothing to answer. */
  pong(_data?: Buffer): void {}

  /** Tells the client the close code and reason, then ends the stream. */
  close(code = 1000, reason = ''): void {
    if (this.readyState !== OPEN) return;
    this.#write(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    this.#response.end();
    this.#closed(code, reason);
  }

  /** Cuts the stream at once (dead peer, failed write). */
  terminate(): void {
    if (this.readyState !== OPEN) return;
    this.#response.destroy();
    this.#closed(1006, '');
  }

  /**
   * Messages of a POST body (one JSON text per line), handed to the connection like frames. False
   * when one is over `maxPayload`: the connection is closed with 1009, as a WebSocket would be.
   */
  receive(frames: readonly string[]): boolean {
    for (const frame of frames) {
      if (this.readyState !== OPEN) return true;
      const bytes = Buffer.from(frame, 'utf8');
      if (bytes.length > this.maxPayload) {
        this.close(1009, 'message too big');
        return false;
      }
      this.emit('message', bytes, false);
    }
    return true;
  }

  /** The heartbeat answer POSTed by the client (hex of the ping's payload). */
  receivePong(hex: string): void {
    if (this.readyState === OPEN) this.emit('pong', Buffer.from(hex, 'hex'));
  }

  #write(chunk: string, callback?: (error?: Error | null) => void): void {
    const response = this.#response;
    if (this.readyState !== OPEN || response.writableEnded) {
      callback?.(new Error('the stream is closed'));
      return;
    }
    if (!response.headersSent) this.#start();
    response.write(chunk, callback);
  }

  /** The first write, once the hub accepted the connection: headers, then the session id. */
  #start(): void {
    const response = this.#response;
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      // nginx and some other proxies buffer responses unless told not to.
      'X-Accel-Buffering': 'no',
    });
    response.socket?.setNoDelay(true);
    response.write(`event: open\ndata: ${JSON.stringify({ session: this.sessionId })}\n\n`);
    // SSE comments keep proxies from closing a stream that has been quiet for a while.
    this.#keepAlive = setInterval(() => this.#write(': keep-alive\n\n'), this.#keepAliveMs);
    this.#keepAlive.unref();
  }

  #closed(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    clearInterval(this.#keepAlive);
    this.emit('close', code, Buffer.from(reason));
  }
}

/** Which transport a connection's socket uses. */
export function transportOf(socket: unknown): Transport {
  return socket instanceof FallbackSocket ? 'sse' : 'websocket';
}
