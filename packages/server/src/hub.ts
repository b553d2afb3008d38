import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  assertDataMessage,
  CLIENT_ID_PATTERN,
  CloseCode,
  type DataMessage,
  type Filter,
  topicsForMessage,
} from '@atp/ws-protocol';
import { type WebSocket, WebSocketServer } from 'ws';
import { type Broker, BrokerUnavailableError, type StreamBatch, type StreamEntry } from './broker.js';
import { Connection } from './connection.js';
import { type FallbackSocket, type Transport, transportOf } from './fallback-socket.js';
import { Heartbeat } from './heartbeat.js';
import type { HubContext } from './hub-context.js';
import { ConnectionCounter } from './limits.js';
import { MemoryBroker } from './memory-broker.js';
import { HubMetrics } from './metrics.js';
import { type ResolvedOptions, resolveOptions } from './options.js';
import { type PreparedEntry, prepareEntry } from './outbound.js';
import { publishCheckedKey } from './publish-checked.js';
import { clientAddress, trustedForwardedHeader } from './proxy.js';
import { SessionRegistry } from './sessions.js';
import { ResourceRegistry } from './resources.js';
import { type IndexedSubscription, SubscriptionIndex } from './subscription-index.js';
import type { ATPWebSocketServerOptions, ClientInfo, Logger, Principal } from './types.js';

/** Answer of `GET /api/ws/info`. */
export interface WebSocketInfo {
  url: string;
  /** Seconds. */
  ping_interval: number;
  /** Seconds. */
  ping_timeout: number;
}

/** A connection refused: the HTTP status, a reason and headers to answer with. */
export interface Refusal {
  status: number;
  reason: string;
  headers?: Record<string, string>;
}

/** A connection that passed the checks (and counts toward the limits). */
interface Admitted {
  clientId: string;
  principal: Principal | null;
  ip: string;
}

/** Entries of history read at a time for a follower from the start (`follow(…, { from: 'start' })`). */
const FOLLOW_PAGE_SIZE = 1000;

/**
 * The real-time hub: accepts WebSocket clients on `/api/ws/updates`, keeps
 * their subscriptions in an index, and fans out every message published (in
 * this process or, through a shared broker, in any other) to the matching
 * connections, with per-connection sequence numbers and resume from history.
 *
 * @example
 * const hub = createATPWebSocketServer({ server: httpServer });
 * await hub.publish({ type: 'test_progress', payload: { suite_execution_id: 1, test_execution_id: 2,
 *   test_id: 't-1', status: 'running', progress_percent: 50 } });
 * await hub.close();
 */
export class ATPWebSocketServer {
  /**
   * Resolves once the hub listens (when it owns its server) and knows where
   * the broker's stream is. While the broker is unreachable at start it stays
   * pending (clients are refused with 503 meanwhile, publishing rejects) and
   * resolves once the broker answers; it rejects only when listening fails.
   */
  readonly ready: Promise<void>;
  /** Prometheus metrics of this hub. */
  readonly metricsRegistry: HubMetrics;
  /** Live state resources: snapshot providers by kind, and followers of the delivered stream. */
  readonly resources: ResourceRegistry;
  /** Identifies this process among several sharing a broker. */
  readonly serverId: string = randomBytes(4).toString('hex');
  readonly #options: ResolvedOptions;
  readonly #userOptions: ATPWebSocketServerOptions;
  readonly #logger: Logger;
  readonly #broker: Broker;
  readonly #ownsBroker: boolean;
  readonly #server: Server | ATPWebSocketServerOptions['server'];
  readonly #ownsServer: boolean;
  readonly #wss: WebSocketServer;
  readonly #connections = new Map<string, Connection>();
  readonly #counter = new ConnectionCounter();
  readonly #sessions: SessionRegistry;
  readonly #heartbeat: Heartbeat;
  readonly #context: HubContext;
  #position = { epoch: '', offset: 0 };
  /** Resolves {@link #known}. */
  #positionKnown!: () => void;
  /** Resolves once the stream position this process delivers from is known. */
  readonly #known = new Promise<void>((resolve) => {
    this.#positionKnown = resolve;
  });
  #unsubscribeBroker: (() => Promise<void>) | undefined;
  #stopSessionTaken: (() => Promise<void>) | undefined;
  /** Where each connection's take of its session stands in the order shared through the broker. */
  readonly #sessionOrders = new WeakMap<Connection, Promise<number>>();
  #presenceTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  readonly #onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    void this.#handleUpgrade(request, socket, head);
  };

  constructor(options: ATPWebSocketServerOptions = {}) {
    const { resolved, logger } = resolveOptions(options);
    this.#options = resolved;
    this.#userOptions = options;
    this.#logger = logger;
    this.metricsRegistry = new HubMetrics();
    this.#broker = options.broker ?? new MemoryBroker();
    this.#ownsBroker = options.broker === undefined;
    this.#sessions = new SessionRegistry(resolved.sessionTtlMs);
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: resolved.maxPayload,
      perMessageDeflate: false,
      // Ping frames are answered by the connection, within its rate limit.
      autoPong: false,
    });
    if (options.server) {
      this.#server = options.server;
      this.#ownsServer = false;
    } else {
      this.#server = createServer((_request, response) => {
        response.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket upgrade required\n');
      });
      this.#ownsServer = true;
    }
    this.#server.on('upgrade', this.#onUpgrade);
    const index = new SubscriptionIndex<Connection>();
    const authorize = options.authorizeSubscription;
    this.resources = new ResourceRegistry(
      () => this.#position,
      (error, kind, id) => logger.error({ err: error, kind, id }, 'a resource provider failed'),
      // The stream's head, for a provider's position ahead of what this process delivered.
      () => this.#broker.position(),
      // History for followers from the start, a page at a time, once the delivered position is known.
      { read: (from) => this.#broker.read(from, { limit: FOLLOW_PAGE_SIZE }), started: this.#known },
    );
    this.#context = {
      resources: this.resources,
      options: resolved,
      metrics: this.metricsRegistry,
      index,
      broker: this.#broker,
      logger,
      serverId: this.serverId,
      position: () => this.#position,
      release: (connection) => this.#release(connection),
      authorizeSubscription: async (principal: Principal | null, topic: string, filter: Filter) =>
        authorize ? authorize(principal, topic, filter) : true,
    };
    this.#heartbeat = new Heartbeat(
      () => this.#connections.values(),
      resolved.pingInterval,
      resolved.pingTimeout,
      () => this.#sessions.sweep(),
    );
    this.ready = this.#start(index, options.port);
    // Callers that never await `ready` must not crash the process on a failed start.
    this.ready.catch((error: unknown) => this.#logger.error({ err: error }, 'hub failed to start'));
  }

  /** The address the hub listens on when it owns its server (`port` option), else the attached server's. */
  address(): AddressInfo | null {
    const address = this.#server?.address();
    return address && typeof address === 'object' ? address : null;
  }

  /**
   * Publishes one data message or several, in order. The message is checked
   * against the protocol's schemas first: an invalid one throws a
   * `ProtocolError` at once and nothing of the call is published. The promise
   * rejects when the broker cannot store the messages.
   */
  publish(messages: DataMessage | readonly DataMessage[]): Promise<void> {
    const list = Array.isArray(messages) ? messages : [messages as DataMessage];
    const valid = list.map((message) => assertDataMessage(message));
    return this[publishCheckedKey](valid);
  }

  /**
   * Publishes messages that `parseDataMessage` returned (the REST router's
   * path: checked once there, not again here).
   * @internal
   */
  [publishCheckedKey](messages: readonly DataMessage[]): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('the hub is closed'));
    return this.#broker.publish(messages);
  }

  /** The connected clients: of every process when the broker shares presence, else of this one. */
  async clients(): Promise<ClientInfo[]> {
    const local = () => [...this.#connections.values()].map((connection) => connection.info());
    if (!this.#broker.listClients) return local();
    await this.#reportClients();
    try {
      return await this.#broker.listClients();
    } catch (error) {
      this.#logger.warn({ err: error }, 'listing the clients of every process failed; listing this one only');
      return local();
    }
  }

  /**
   * Connection info for `GET /api/ws/info`, with the URL as a client outside sees it: from `publicUrl`,
   * else from `Host`, or `X-Forwarded-Proto` / `X-Forwarded-Host` when the peer is trusted by `trustProxy`.
   */
  info(request?: IncomingMessage): WebSocketInfo {
    return {
      url: this.#userOptions.publicUrl ?? this.#urlFor(request),
      ping_interval: this.#options.pingInterval / 1000,
      ping_timeout: this.#options.pingTimeout / 1000,
    };
  }

  /** Prometheus text of the hub's metrics. */
  metrics(): Promise<string> {
    const metrics = this.metricsRegistry;
    metrics.connections.set(this.#connections.size);
    const byTransport: Record<Transport, number> = { websocket: 0, sse: 0 };
    for (const connection of this.#connections.values()) byTransport[transportOf(connection.ws)] += 1;
    for (const [transport, count] of Object.entries(byTransport))
      metrics.connectionsByTransport.set({ transport }, count);
    metrics.brokerUp.set(this.#broker.available === false || this.#position.epoch === '' ? 0 : 1);
    let buffered = 0;
    let lag = 0;
    let oldest = 0;
    let replaying = 0;
    for (const connection of this.#connections.values()) {
      const info = connection.info();
      buffered += info.buffered_bytes ?? 0;
      lag += info.lag_messages ?? 0;
      oldest = Math.max(oldest, info.lag_seconds ?? 0);
      if (info.replaying) replaying += 1;
    }
    metrics.bufferedBytes.set(buffered);
    metrics.lagMessages.set(lag);
    metrics.lagSecondsMax.set(oldest);
    metrics.replaysActive.set(replaying);
    return this.metricsRegistry.registry.metrics();
  }

  /** Content type of {@link ATPWebSocketServer.metrics}'s text. */
  get metricsContentType(): string {
    return this.metricsRegistry.registry.contentType;
  }

  /** Closes every client with 1001 (they reconnect elsewhere), stops the heartbeat and releases the broker. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #start(index: SubscriptionIndex<Connection>, port: number | undefined): Promise<void> {
    // The broker announces where it starts reading (an empty batch) as soon as it can: taking the
    // position from that announcement, not from a separate read, leaves no message between the two.
    // Until it is known (the broker is unreachable at start), upgrades are refused with 503.
    this.#unsubscribeBroker = await this.#broker.subscribe((batch) => this.#dispatch(index, batch));
    if (this.#position.epoch === '') void this.#learnPosition();
    this.#heartbeat.start();
    if (this.#position.epoch !== '') this.#positionKnown();
    // Waited for with the position below, not before listening: the broker may be unreachable yet.
    const sessionsFollowed = this.#broker.onSessionTaken?.((clientId, serverId, order) => {
      if (serverId === this.serverId) return;
      const local = this.#connections.get(clientId);
      if (!local) return;
      // Of two connections taken at the same moment on two processes, the later take stays.
      void this.#sessionOrders.get(local)?.then((mine) => {
        if (mine < order && this.#connections.get(clientId) === local)
          local.close(CloseCode.SessionReplaced, 'another connection took over this client_id');
      });
    });
    sessionsFollowed?.then(
      (stop) => {
        this.#stopSessionTaken = stop;
      },
      (error: unknown) => this.#logger.warn({ err: error }, 'following session takeovers failed'),
    );
    if (this.#broker.reportClients) {
      await this.#reportClients();
      this.#presenceTimer = setInterval(
        () => void this.#reportClients(),
        this.#userOptions.presenceIntervalMs ?? 5000,
      );
      this.#presenceTimer.unref();
    }
    if (this.#ownsServer) {
      const server = this.#server as Server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port ?? 0, this.#options.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    }
    await this.#known;
    await sessionsFollowed?.catch(() => {});
  }

  /** For a broker that does not announce its position: asks it, retrying until it answers. */
  async #learnPosition(): Promise<void> {
    for (let attempt = 0; this.#position.epoch === '' && !this.#closing; attempt++) {
      try {
        const position = await this.#broker.position();
        if (this.#position.epoch === '') {
          this.#position = position;
          this.#positionKnown();
        }
        return;
      } catch (error) {
        if (attempt === 0) this.#logger.warn({ err: error }, 'the broker is unreachable; retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** Math.min(attempt, 6))));
      }
    }
  }

  #dispatch(index: SubscriptionIndex<Connection>, batch: StreamBatch): void {
    const started = performance.now();
    if (this.#position.epoch !== '' && batch.epoch !== this.#position.epoch) {
      this.#logger.warn(
        { from: this.#position.epoch, to: batch.epoch },
        'the stream has a new epoch: marking a gap',
      );
      this.#position = { epoch: batch.epoch, offset: 0 };
      for (const connection of this.#connections.values()) connection.epochChanged(batch.epoch);
    }
    if (batch.entries.length === 0) {
      this.#position = { epoch: batch.epoch, offset: batch.head ?? this.#position.offset };
      this.#positionKnown();
      return;
    }
    if (batch.hole) for (const connection of this.#connections.values()) connection.hole();
    this.resources.feed(batch);
    // One visitor per batch, not a closure per message; the position is set once the batch is out
    // (nothing reads it while this loop runs).
    let prepared: PreparedEntry | undefined;
    const visit = (subscription: IndexedSubscription<Connection>) =>
      subscription.owner.deliver(prepared as PreparedEntry);
    for (const entry of batch.entries) {
      prepared = prepareEntry(batch.epoch, entry);
      for (const topic of topicsForMessage(entry.message)) {
        index.forEachMatch(topic, entry.message.payload, visit);
      }
    }
    const last = batch.entries[batch.entries.length - 1] as StreamEntry;
    this.#position = { epoch: batch.epoch, offset: last.offset };
    const metrics = this.metricsRegistry;
    metrics.published.inc(batch.entries.length);
    const publishedAt = batch.entries[0]?.publishedAt;
    if (publishedAt !== undefined) {
      metrics.publishToSend.observe(
        Math.max(0, Date.now() - publishedAt + (performance.now() - started)) / 1000,
      );
    }
  }

  async #reportClients(clients = [...this.#connections.values()].map((c) => c.info())): Promise<void> {
    try {
      await this.#broker.reportClients?.(this.serverId, clients);
    } catch (error) {
      this.#logger.warn({ err: error }, "reporting this process's clients to the broker failed");
    }
  }

  #urlFor(request: IncomingMessage | undefined): string {
    // X-Forwarded-* only from a trusted proxy: anyone else could make /api/ws/info point elsewhere.
    const trust = this.#options.trustProxy;
    const forwardedProto = trustedForwardedHeader(request, 'x-forwarded-proto', trust);
    const encrypted = (request?.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
    const secure = forwardedProto ? forwardedProto === 'https' || forwardedProto === 'wss' : encrypted;
    const forwardedHost = trustedForwardedHeader(request, 'x-forwarded-host', trust);
    const address = this.address();
    const host = forwardedHost || request?.headers.host || `localhost:${address?.port ?? 8000}`;
    return `${secure ? 'wss' : 'ws'}://${host}${this.#options.path}`;
  }

  async #handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (status: number, reason: string, headers: Record<string, string> = {}) => {
      this.metricsRegistry.upgradesRefused.inc({ status: String(status) });
      const body = `${reason}\n`;
      const lines = [
        `HTTP/1.1 ${status} ${httpStatusText(status)}`,
        'Connection: close',
        'Content-Type: text/plain; charset=utf-8',
        `Content-Length: ${Buffer.byteLength(body)}`,
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      if (socket.writable) socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
      else socket.destroy();
    };
    socket.on('error', () => socket.destroy());
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://localhost');
    } catch {
      return refuse(400, 'bad request URL');
    }
    if (url.pathname !== this.#options.path) {
      // Another upgrade handler of a shared server may own this path.
      if (this.#ownsServer) refuse(404, `no WebSocket endpoint at ${url.pathname}`);
      return;
    }
    const admitted = await this.#admit(request, url);
    if ('status' in admitted) return refuse(admitted.status, admitted.reason, admitted.headers);
    const { clientId, principal, ip } = admitted;
    let accepted = false;
    try {
      if (this.#closing || socket.destroyed) return refuse(503, 'server is shutting down');
      // ws calls back synchronously, and only once the handshake is complete: an upgrade it refuses
      // itself (invalid Sec-WebSocket-Key, a socket half-closed meanwhile) must give its slot back.
      this.#wss.handleUpgrade(request, socket, head, (ws) => {
        accepted = true;
        this.#accept(ws, clientId, principal, ip);
      });
    } finally {
      if (!accepted) this.#counter.remove(ip);
    }
  }

  /**
   * Accepts a connection over another transport than WebSocket (the SSE fallback of
   * `@atp/ws-server/express`): the same checks as an upgrade (broker ready, Origin, `client_id`,
   * connection limits, authentication with `token` or `Authorization`, session ownership), then the
   * same protocol, sequence, limits and heartbeat. Returns the refusal, or `undefined` once accepted.
   */
  async acceptFallback(request: IncomingMessage, socket: FallbackSocket): Promise<Refusal | undefined> {
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://localhost');
    } catch {
      return { status: 400, reason: 'bad request URL' };
    }
    const admitted = await this.#admit(request, url);
    if ('status' in admitted) {
      this.metricsRegistry.upgradesRefused.inc({ status: String(admitted.status) });
      return admitted;
    }
    if (this.#closing || socket.readyState !== 1) {
      this.#counter.remove(admitted.ip);
      return { status: 503, reason: 'server is shutting down' };
    }
    socket.maxPayload = this.#options.maxPayload;
    this.#accept(socket as unknown as WebSocket, admitted.clientId, admitted.principal, admitted.ip);
    return undefined;
  }

  /**
   * The checks every new connection passes, whatever its transport. Once admitted, the connection
   * counts toward the limits: the caller accepts it or removes it from the counter.
   */
  async #admit(request: IncomingMessage, url: URL): Promise<Admitted | Refusal> {
    if (this.#closing) return { status: 503, reason: 'server is shutting down' };
    if (this.#position.epoch === '') {
      // No stream position yet (the broker has been unreachable since start): a greeting now could
      // only carry a position that looks valid and is not.
      return {
        status: 503,
        reason: 'the message broker is not reachable yet',
        headers: { 'Retry-After': '2' },
      };
    }
    if (!this.#originAllowed(request.headers.origin)) return { status: 403, reason: 'origin not allowed' };
    const requestedId = url.searchParams.get('client_id');
    if (requestedId !== null && !CLIENT_ID_PATTERN.test(requestedId)) {
      return { status: 400, reason: 'client_id must match ^[A-Za-z0-9_-]{1,64}$' };
    }
    // X-Forwarded-For counts only through trusted proxies, else anyone could dodge the per-IP limit.
    const ip = clientAddress(request, this.#options.trustProxy);
    if (this.#counter.total >= this.#options.maxConnections) {
      return { status: 503, reason: 'too many connections', headers: { 'Retry-After': '5' } };
    }
    if (this.#counter.countFor(ip) >= this.#options.maxConnectionsPerIp) {
      return {
        status: 429,
        reason: 'too many connections from this address',
        headers: { 'Retry-After': '5' },
      };
    }
    // Counted before the asynchronous hook, so a flood cannot slip past the limits while it runs.
    this.#counter.add(ip);
    try {
      const principal = await this.#authenticate(request, url);
      if (principal === undefined) {
        this.#counter.remove(ip);
        return { status: 401, reason: 'authentication required', headers: { 'WWW-Authenticate': 'Bearer' } };
      }
      const clientId = requestedId ?? randomBytes(12).toString('base64url');
      if (!this.#sessions.mayUse(clientId, principal) || !(await this.#claimSession(clientId, principal))) {
        this.#counter.remove(ip);
        return { status: 403, reason: 'client_id belongs to another principal' };
      }
      return { clientId, principal, ip };
    } catch (error) {
      this.#counter.remove(ip);
      this.#logger.error({ err: error }, 'authenticating the upgrade failed');
      return { status: error instanceof BrokerUnavailableError ? 503 : 500, reason: 'authentication failed' };
    }
  }

  /**
   * Claims the session in the shared broker. When the broker cannot answer,
   * an authenticated hub refuses (503 through the caller's catch) rather than
   * let one principal take over another's session; an open hub lets it through.
   */
  async #claimSession(clientId: string, principal: Principal | null): Promise<boolean> {
    if (!this.#broker.claimSession) return true;
    try {
      return await this.#broker.claimSession(clientId, principal?.id ?? null, this.#options.sessionTtlMs);
    } catch (error) {
      if (this.#userOptions.authenticate) throw error;
      this.#logger.warn({ err: error, clientId }, 'could not claim the session in the broker; accepting');
      return true;
    }
  }

  /** The principal, `null` without an authenticate hook, `undefined` when refused. */
  async #authenticate(request: IncomingMessage, url: URL): Promise<Principal | null | undefined> {
    const hook = this.#userOptions.authenticate;
    if (!hook) return null;
    const header = request.headers.authorization;
    const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const token = url.searchParams.get('token') ?? bearer;
    const principal = await hook(request, token ?? undefined);
    return principal ?? undefined;
  }

  #originAllowed(origin: string | undefined): boolean {
    const allowed = this.#userOptions.allowedOrigins;
    if (allowed === undefined) return true;
    // No Origin: not a browser, so not the cross-site request an origin check guards against.
    const missing = this.#options.allowMissingOrigin;
    if (origin === undefined && missing !== undefined) return missing;
    if (typeof allowed === 'function') return allowed(origin);
    return origin !== undefined && allowed.includes(origin);
  }

  #accept(ws: WebSocket, clientId: string, principal: Principal | null, ip: string): void {
    const previous = this.#connections.get(clientId);
    if (previous) {
      previous.close(CloseCode.SessionReplaced, 'another connection took over this client_id');
    }
    const reconnects = this.#sessions.open(clientId, principal);
    if (reconnects > 0) this.metricsRegistry.reconnects.inc();
    const connection = new Connection(this.#context, ws, clientId, principal, ip, reconnects);
    this.#connections.set(clientId, connection);
    const order = this.#broker.takeSession?.(clientId, this.serverId).catch((error: unknown) => {
      this.#logger.warn({ err: error, clientId }, 'could not tell the other processes of this session');
      // Not announced: any take announced elsewhere is later.
      return Number.NEGATIVE_INFINITY;
    });
    if (order) this.#sessionOrders.set(connection, order);
    this.metricsRegistry.connectionsTotal.inc();
    this.metricsRegistry.connections.set(this.#connections.size);
    ws.on('error', (error) => this.#logger.debug({ err: error, clientId }, 'socket error'));
    ws.on('close', () => this.#release(connection));
    connection.greet();
  }

  #release(connection: Connection): void {
    if (this.#connections.get(connection.clientId) === connection) {
      this.#connections.delete(connection.clientId);
      this.#sessions.closed(connection.clientId);
    }
    if (!connection.disposed) {
      connection.dispose();
      this.#counter.remove(connection.ip);
    }
    this.metricsRegistry.connections.set(this.#connections.size);
  }

  async #shutdown(): Promise<void> {
    this.#positionKnown();
    this.#heartbeat.stop();
    this.#server?.off('upgrade', this.#onUpgrade);
    const closed = [...this.#connections.values()].map(
      (connection) =>
        new Promise<void>((resolve) => {
          connection.ws.once('close', () => resolve());
          connection.close(CloseCode.GoingAway, 'server shutting down');
        }),
    );
    await Promise.all(closed);
    clearInterval(this.#presenceTimer);
    if (this.#broker.reportClients) await this.#reportClients([]);
    this.#wss.close();
    await this.#unsubscribeBroker?.();
    await this.#stopSessionTaken?.();
    if (this.#ownsBroker) await this.#broker.close();
    this.#sessions.clear();
    if (this.#ownsServer) {
      const server = this.#server as Server;
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

function httpStatusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    503: 'Service Unavailable',
  };
  return texts[status] ?? 'Error';
}

/**
 * Creates a hub. Attach it to an existing HTTP server with `server`, or let it
 * listen on its own with `port`.
 *
 * @example
 * const hub = createATPWebSocketServer({ port: 8000 });
 * await hub.ready;
 */
export function createATPWebSocketServer(options: ATPWebSocketServerOptions = {}): ATPWebSocketServer {
  return new ATPWebSocketServer(options);
}
