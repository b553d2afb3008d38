import { TcpProxy } from '../harness/proxy.js';
import { ATPWebSocket, type WebSocketConstructor } from '@atp/ws-client';
import { createFallback, type Fallback } from '@atp/ws-client/fallback';
import { WebSocket } from 'ws';
import type { Sub } from './messages.js';
import { tagOf } from './messages.js';
import { type ClientEvent, type ClientRecord, type Clock, subKey } from './model.js';

interface Position {
  epoch: string;
  offset: number;
}

type Wire = {
  type: string;
  id?: unknown;
  payload?: Record<string, unknown>;
  sequence?: number;
  epoch?: string;
  offset?: number;
};

type Pending =
  | { type: 'subscribe'; key: string; afterK: number | undefined; crafted: boolean }
  | { type: 'resume'; crafted: boolean; craft: Craft | undefined }
  | { type: 'other' };

/** How a `from` or a resume position is made. */
export type Craft = 'future' | 'gone';

/**
 * A raw `ws` client speaking the wire protocol itself, recording every frame
 * for the model: it keeps its position and sequence as docs/PROTOCOL.md says a
 * client must, resumes with them (or with a crafted position), and can stop reading.
 */
export class RawClient {
  readonly record: ClientRecord;
  readonly held = new Map<string, Sub>();
  ws: WebSocket | undefined;
  hub = 0;
  /** Data messages received: id → position, to pick a `from` from. */
  readonly received: Array<{ k: number } & Position> = [];
  #lastSeq = 0;
  /** Added to wire sequences when the server numbered a connection afresh (resume refused). */
  #base = 0;
  #expected = 1;
  #position: Position | undefined;
  #connectionEpoch = '';
  #replays: Array<{ sub: string | undefined; left: number }> = [];
  #pending = new Map<string, Pending>();
  #nextId = 0;
  #paused = false;

  constructor(
    readonly name: string,
    readonly clock: Clock,
  ) {
    this.record = { name, subs: new Map(), events: [] };
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  get paused(): boolean {
    return this.#paused;
  }

  #event(event: ClientEvent): void {
    this.record.events.push(event);
  }

  /**
   * Opens a connection to `url`. A client with a position resumes (with `craft`, from a position
   * ahead of the stream or of a gone epoch); one without subscribes to what it holds.
   */
  async open(url: string, hub: number, craft?: Craft): Promise<void> {
    this.close();
    this.hub = hub;
    this.#replays = [];
    this.#pending.clear();
    this.#paused = false;
    const ws = new WebSocket(`${url}?client_id=${this.name}`, { perMessageDeflate: false });
    this.ws = ws;
    const connected = new Promise<Wire>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no connected within 5 s`)), 5000);
      ws.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      ws.on('message', (data) => {
        // A dropped socket may still hand over frames it had buffered: they belong to no connection.
        if (this.ws !== ws) return;
        const message = JSON.parse(String(data)) as Wire;
        if (message.type === 'connected') {
          clearTimeout(timer);
          resolve(message);
        }
        this.#onMessage(message);
      });
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      if (this.ws === ws) this.#event({ kind: 'disconnect', at: this.clock.tick(), code });
    });
    await connected;
    this.#event({ kind: 'connect', at: this.clock.tick(), hub });
    const resume = this.#resumePayload(craft);
    if (resume) {
      const id = this.#id({ type: 'resume', crafted: craft !== undefined, craft });
      this.#send({ type: 'resume', id, payload: resume });
    } else {
      if (this.#lastSeq > 0) {
        // No position to resume from: a new numbering, a gap for the model.
        this.#base = this.#lastSeq + 1;
        this.#expected = this.#base + 1;
        this.#event({ kind: 'gap', at: this.clock.tick(), why: 'no position: fresh session' });
      }
      for (const sub of this.held.values()) this.subscribe(sub);
    }
  }

  #resumePayload(craft: Craft | undefined): Record<string, unknown> | undefined {
    if (!this.#position) return undefined;
    let { epoch, offset } = this.#position;
    if (craft === 'future') offset += 100_000;
    if (craft === 'gone') {
      epoch = 'gone-epoch';
      offset = 3;
    }
    return { epoch, offset, sequence: this.#lastSeq, subscriptions: [...this.held.values()] };
  }

  /** Subscribes (with `from` as given), holding the subscription from now on. */
  subscribe(
    sub: Sub,
    from?: { from: 'start' | Position; afterK: number | undefined; crafted: boolean },
  ): void {
    const key = subKey(sub);
    this.held.set(key, sub);
    this.record.subs.set(key, sub);
    if (!this.connected) return;
    const id = this.#id({
      type: 'subscribe',
      key,
      afterK: from?.afterK,
      crafted: from?.crafted ?? false,
    });
    const payload: Record<string, unknown> = { topic: sub.topic };
    if (sub.filter) payload.filter = sub.filter;
    if (from) payload.from = from.from;
    this.#send({ type: 'subscribe', id, payload });
  }

  /** A `from` for a subscription: the start, a position this client received, or a crafted one. */
  fromFor(
    kind: 'start' | 'past' | Craft,
    pick: number,
  ): { from: 'start' | Position; afterK: number | undefined; crafted: boolean } {
    const position = this.#position;
    if (kind === 'future' && position)
      return {
        from: { epoch: position.epoch, offset: position.offset + 100_000 },
        afterK: undefined,
        crafted: true,
      };
    if (kind === 'gone')
      return { from: { epoch: 'gone-epoch', offset: 3 }, afterK: undefined, crafted: true };
    const sameEpoch = this.received.filter((r) => r.epoch === position?.epoch);
    if (kind === 'past' && sameEpoch.length > 0) {
      const r = sameEpoch[pick % sameEpoch.length] as { k: number } & Position;
      return { from: { epoch: r.epoch, offset: r.offset }, afterK: r.k, crafted: false };
    }
    return { from: 'start', afterK: -1, crafted: false };
  }

  unsubscribe(sub: Sub): void {
    const key = subKey(sub);
    if (!this.held.has(key)) return;
    // Without a filter, `unsubscribe` removes every subscription to the topic.
    const gone = sub.filter
      ? [key]
      : [...this.held.values()].filter((h) => h.topic === sub.topic).map(subKey);
    for (const k of gone) {
      this.held.delete(k);
      this.#event({ kind: 'close', at: this.clock.tick(), sub: k });
    }
    if (!this.connected) return;
    const payload: Record<string, unknown> = { topic: sub.topic };
    if (sub.filter) payload.filter = sub.filter;
    this.#send({ type: 'unsubscribe', id: this.#id({ type: 'other' }), payload });
  }

  ping(): void {
    if (this.connected) this.#send({ type: 'ping', id: this.#id({ type: 'other' }) });
  }

  /** Stops reading the socket (the server's buffers fill). */
  pause(): void {
    if (!this.connected || this.#paused) return;
    this.#paused = true;
    this.ws?.pause();
  }

  unpause(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.ws?.resume();
  }

  /** Drops the connection at once (no close handshake). */
  close(): void {
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState !== WebSocket.CLOSED) {
      this.#event({ kind: 'disconnect', at: this.clock.tick(), code: 1006 });
      this.ws = undefined;
      ws.terminate();
    }
    this.ws = undefined;
  }

  #id(pending: Pending): string {
    const id = `${this.name}-${++this.#nextId}`;
    this.#pending.set(id, pending);
    return id;
  }

  #send(message: object): void {
    this.ws?.send(JSON.stringify(message));
  }

  #observe(position: Position | undefined): void {
    if (!position || this.#replays.length > 0) return;
    this.#advance(position);
  }

  #advance(position: Position): void {
    const current = this.#position;
    if (!current || current.epoch !== position.epoch || position.offset > current.offset)
      this.#position = { epoch: position.epoch, offset: position.offset };
  }

  #onMessage(message: Wire): void {
    const at = this.clock.tick();
    const payload = message.payload ?? {};
    const pending = typeof message.id === 'string' ? this.#pending.get(message.id) : undefined;
    if (pending) this.#pending.delete(message.id as string);
    const position =
      typeof payload.epoch === 'string' && typeof payload.offset === 'number'
        ? { epoch: payload.epoch, offset: payload.offset }
        : undefined;
    if (typeof message.sequence === 'number') {
      this.#onData(message, at);
      return;
    }
    switch (message.type) {
      case 'connected':
        // A client that resumes keeps its own position: the greeting of a new connection (up to date
        // with everything, as it holds no subscription yet) would skip what was missed.
        this.#connectionEpoch = position?.epoch ?? '';
        if (!this.#position) this.#observe(position);
        return;
      case 'pong':
        this.#observe(position);
        return;
      case 'subscribed': {
        const history = payload.history as { replayed: number; complete: boolean } | undefined;
        const sub = pending?.type === 'subscribe' ? pending : undefined;
        if (sub) this.#event({ kind: 'open', at, sub: sub.key });
        if (history && sub) {
          this.#event({
            kind: 'history',
            at,
            sub: sub.key,
            afterK: sub.crafted ? undefined : sub.afterK,
            complete: history.complete,
            replayed: history.replayed,
          });
          if (sub.crafted && history.complete)
            this.#event({
              kind: 'violation',
              at,
              what: `a crafted from position (${JSON.stringify(payload)}) answered complete`,
            });
          if (history.replayed > 0) this.#replays.push({ sub: sub.key, left: history.replayed });
        }
        this.#observe(position);
        return;
      }
      case 'resumed': {
        const recovered = payload.recovered === true;
        const next = Number(payload.next_sequence) + this.#base;
        const want = this.#lastSeq + (recovered ? 1 : 2);
        if (next !== want)
          this.#event({
            kind: 'violation',
            at,
            what: `resumed next_sequence ${next} (recovered ${recovered}) after last sequence ${this.#lastSeq}`,
          });
        if (pending?.type === 'resume' && pending.crafted && recovered)
          this.#event({
            kind: 'violation',
            at,
            what: `a resume from a crafted position answered recovered: ${JSON.stringify(payload)}`,
          });
        if (!recovered || payload.complete !== true)
          this.#event({ kind: 'gap', at, why: `resumed ${String(payload.reason)}` });
        for (const key of this.held.keys()) this.#event({ kind: 'open', at, sub: key });
        this.#expected = next;
        this.#connectionEpoch = position?.epoch ?? this.#connectionEpoch;
        const replayed = Number(payload.replayed);
        // After a resume from a gone epoch the server rightly replays the stream from its start,
        // which may hold what this client already had: a replay of its own for the model.
        const label =
          pending?.type === 'resume' && pending.craft === 'gone' ? 'resume from a gone epoch' : undefined;
        if (replayed > 0) this.#replays.push({ sub: label, left: replayed });
        this.#observe(position);
        return;
      }
      case 'error':
        if (pending?.type === 'resume') {
          // Refused: nothing restored, numbered from 1 (PROTOCOL.md): subscribe again, a gap.
          this.#base = this.#lastSeq + 1;
          this.#expected = this.#base + 1;
          this.#event({ kind: 'gap', at, why: `resume refused: ${String(payload.code)}` });
          for (const sub of this.held.values()) this.subscribe(sub);
        } else if (payload.code !== 'rate_limited') {
          this.#event({
            kind: 'violation',
            at,
            what: `error ${String(payload.code)}: ${String(payload.message)}`,
          });
        }
        return;
    }
  }

  #onData(message: Wire, at: number): void {
    const seq = (message.sequence as number) + this.#base;
    const epoch = message.epoch ?? '';
    const offset = message.offset ?? 0;
    const k = tagOf({ type: message.type, payload: message.payload });
    if (seq > this.#expected && epoch !== this.#connectionEpoch)
      this.#event({ kind: 'gap', at, why: `sequence hole at a new epoch ${epoch}` });
    const replay = this.#replays[0];
    let replayOf: string | undefined;
    if (replay) {
      replayOf = replay.sub;
      if (--replay.left === 0) this.#replays.shift();
    }
    this.#event({ kind: 'data', at, k, seq, epoch, offset, ...(replayOf ? { replayOf } : {}) });
    this.#lastSeq = Math.max(this.#lastSeq, seq);
    this.#expected = seq + 1;
    this.#connectionEpoch = epoch;
    this.#advance({ epoch, offset });
    this.received.push({ k, epoch, offset });
  }
}

/**
 * A TCP relay in front of one ATPWebSocket: `cut()` drops its connection as a
 * network failure would, and `target` picks the hub its next connection reaches.
 */
export class Route extends TcpProxy {
  constructor(target: number) {
    super(target, true);
  }
}

const NodeWebSocket = class extends WebSocket {
  constructor(url: string) {
    super(url, { perMessageDeflate: false });
  }
} as unknown as WebSocketConstructor;

/**
 * The real `ATPWebSocket` (with `ws`) behind a {@link Route}, recording what it delivers to the
 * application. With `fallback`, it connects through `@atp/ws-client/fallback`, and
 * {@link AtpClient.blockWebSocket} makes its WebSocket attempts fail as a proxy refusing upgrades
 * would: its next connections go over the SSE stream (through the same route) until unblocked.
 */
export class AtpClient {
  readonly record: ClientRecord;
  readonly ws: ATPWebSocket;
  readonly held = new Map<string, Sub>();
  readonly fallback: Fallback | undefined;
  /** Connections that went over the SSE stream (switches to it, as the `transport` event counts them). */
  sseConnections = 0;
  #blocked = false;

  constructor(
    readonly name: string,
    readonly clock: Clock,
    readonly route: Route,
    fallback = false,
  ) {
    this.record = { name, subs: new Map(), events: [] };
    const client = this;
    // A blocked upgrade: the attempt goes to a port nothing listens on, and fails as refused.
    const Blockable = class extends WebSocket {
      constructor(url: string) {
        super(client.#blocked ? url.replace(/:\d+\//, ':1/') : url, { perMessageDeflate: false });
      }
    } as unknown as WebSocketConstructor;
    this.fallback = fallback
      ? createFallback({ WebSocket: Blockable, timeout: 2000, retryWebSocketAfter: 0 })
      : undefined;
    this.fallback?.on('transport', (transport) => {
      if (transport === 'sse') this.sseConnections += 1;
    });
    this.ws = new ATPWebSocket({
      url: `ws://127.0.0.1:${route.port}/api/ws/updates`,
      WebSocket: this.fallback?.WebSocket ?? NodeWebSocket,
      clientId: name,
      retryDelay: () => 100,
      pingInterval: 0,
    });
    const events = this.record.events;
    this.ws.on('connect', () => events.push({ kind: 'connect', at: clock.tick(), hub: -1 }));
    this.ws.on('disconnect', ({ code }) => events.push({ kind: 'disconnect', at: clock.tick(), code }));
    this.ws.on('subscribed', ({ topic, filter }) =>
      events.push({ kind: 'open', at: clock.tick(), sub: subKey({ topic, filter }) }),
    );
    this.ws.on('sequence_gap', (gap) =>
      events.push({ kind: 'gap', at: clock.tick(), why: `sequence_gap ${gap.reason}` }),
    );
    this.ws.on('message', (message, meta) =>
      events.push({
        kind: 'data',
        at: clock.tick(),
        k: tagOf(message),
        seq: meta.sequence,
        epoch: meta.epoch,
        offset: meta.offset,
      }),
    );
    this.ws.on('error', () => {});
  }

  get connected(): boolean {
    return this.ws.isConnected;
  }

  /** Blocks (or unblocks) this client's WebSocket upgrades from its next connection on. */
  blockWebSocket(blocked: boolean): void {
    this.#blocked = blocked;
  }

  subscribe(sub: Sub): void {
    const key = subKey(sub);
    if (this.held.has(key)) return;
    this.held.set(key, sub);
    this.record.subs.set(key, sub);
    this.ws.subscribe(sub.topic, sub.filter);
  }

  unsubscribe(sub: Sub): void {
    const key = subKey(sub);
    if (!this.held.delete(key)) return;
    this.record.events.push({ kind: 'close', at: this.clock.tick(), sub: key });
    this.ws.unsubscribe(sub.topic, sub.filter);
  }
}
