import type { ResourceSnapshot } from '@atp/ws-protocol';
import type { ATPWebSocket } from './client.js';
import { ATPWebSocketError } from './errors.js';

/**
 * Pacing of `get_resource` requests, within what the server's default rate limit (50 messages/s,
 * bursts of 100) leaves beside the client's own subscribe pacing (bursts of 40, 20/s), with room
 * for pings: bursts of 50, then 25 per second, at most 32 waiting for their answer.
 */
const BURST = 50;
const PER_MS = 0.025;
const MAX_IN_FLIGHT = 32;
/** Delay before sending again what the server may have dropped for rate (plus up to as much jitter). */
const RESEND_MS = 1000;
/**
 * A request still unanswered after this long on an open connection is sent again (doubling up to
 * four times as long): its frame may have been dropped with no notice naming it. Above the
 * server's default provider timeout (10 s), after which it answers anyway.
 */
const ANSWER_TIMEOUT_MS = 15_000;

interface Waiter {
  readonly resolve: (snapshot: ResourceSnapshot) => void;
  readonly reject: (error: ATPWebSocketError) => void;
}

/** One `get_resource`: every fetch of the same resource asked for before it is sent shares it. */
interface Request {
  readonly kind: string;
  readonly id: string;
  /** The frame's `id`: the same on every send, so a late answer to an earlier send still counts. */
  readonly requestId: string;
  readonly waiters: Set<Waiter>;
  sent: boolean;
  /** How many times it was sent: each unanswered send waits longer before the next. */
  sends: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

let requests = 0;
const perClient = new WeakMap<ATPWebSocket, ResourceRequests>();

/**
 * The `get_resource` requests of one client: paced under the server's rate limit, sent again when
 * the server may have dropped them (a `rate_limited` notice, or no answer in time), and rejected
 * when the connection drops. Listens to the client only while it has requests.
 */
export class ResourceRequests {
  static of(client: ATPWebSocket): ResourceRequests {
    let requests = perClient.get(client);
    if (!requests) {
      requests = new ResourceRequests(client);
      perClient.set(client, requests);
    }
    return requests;
  }

  readonly #client: ATPWebSocket;
  /** Every request not yet answered, by frame id (waiting to be sent, or sent). */
  readonly #requests = new Map<string, Request>();
  /** Requests waiting to be sent, oldest first. */
  #queue: Request[] = [];
  #tokens = BURST;
  #tokensAt = Date.now();
  #perMs = PER_MS;
  #pump: ReturnType<typeof setTimeout> | undefined;
  #stops: Array<() => void> | undefined;

  private constructor(client: ATPWebSocket) {
    this.#client = client;
  }

  /** How many requests are unanswered (waiting to be sent, or sent). */
  get size(): number {
    return this.#requests.size;
  }

  /** The snapshot of `kind`/`id`, from a request sent now or soon (or one already waiting to be sent). */
  request(kind: string, id: string, signal?: AbortSignal): Promise<ResourceSnapshot> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new ATPWebSocketError('aborted', `the fetch of ${kind} '${id}' was aborted`));
        return;
      }
      if (this.#client.state !== 'open') {
        // Not queued while offline: the resource fetches again on `connect`.
        reject(new ATPWebSocketError('disconnected', `not connected: ${kind} '${id}' is fetched on connect`));
        return;
      }
      // Shared only with a request never sent: the answer to one sent earlier may predate the caller's subscriptions.
      const request =
        this.#queue.find((r) => r.kind === kind && r.id === id && r.sends === 0) ?? this.#add(kind, id);
      const waiter: Waiter = {
        resolve: (snapshot) => {
          signal?.removeEventListener('abort', abort);
          resolve(snapshot);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', abort);
          reject(error);
        },
      };
      const abort = () => {
        request.waiters.delete(waiter);
        if (request.waiters.size === 0) this.#remove(request);
        reject(new ATPWebSocketError('aborted', `the fetch of ${kind} '${id}' was aborted`));
      };
      signal?.addEventListener('abort', abort, { once: true });
      request.waiters.add(waiter);
      this.#send();
    });
  }

  #add(kind: string, id: string): Request {
    const request: Request = {
      kind,
      id,
      requestId: `resource-${++requests}`,
      waiters: new Set(),
      sent: false,
      sends: 0,
      timer: undefined,
    };
    this.#requests.set(request.requestId, request);
    this.#queue.push(request);
    this.#listen();
    return request;
  }

  /** Forgets `request` (answered, failed or no longer wanted): a later answer to it is ignored. */
  #remove(request: Request): void {
    clearTimeout(request.timer);
    this.#requests.delete(request.requestId);
    const queued = this.#queue.indexOf(request);
    if (queued >= 0) this.#queue.splice(queued, 1);
    if (this.#requests.size > 0) {
      this.#send();
      return;
    }
    clearTimeout(this.#pump);
    this.#pump = undefined;
    for (const stop of this.#stops?.splice(0) ?? []) stop();
    this.#stops = undefined;
  }

  #listen(): void {
    const client = this.#client;
    this.#stops ??= [
      client.on('resource', (message) => {
        const request = typeof message.id === 'string' ? this.#requests.get(message.id) : undefined;
        if (!request) return;
        this.#remove(request);
        for (const waiter of request.waiters) waiter.resolve(message.payload);
      }),
      client.on('error', ({ event, error }) => this.#onError(event, error)),
      client.on('disconnect', () => {
        // What was sent will not be answered: each resource fetches again on `connect`.
        const all = [...this.#requests.values()];
        this.#tokens = BURST;
        this.#perMs = PER_MS;
        for (const request of all) this.#remove(request);
        for (const request of all) {
          const error = new ATPWebSocketError(
            'disconnected',
            `the connection dropped before ${request.kind} '${request.id}' arrived`,
          );
          for (const waiter of request.waiters) waiter.reject(error);
        }
      }),
    ];
  }

  #onError(event: unknown, error: ATPWebSocketError): void {
    const eventId = (event as { id?: unknown } | undefined)?.id;
    const request = typeof eventId === 'string' ? this.#requests.get(eventId) : undefined;
    if (error.serverCode === 'rate_limited') {
      // Slow down. Without an id, the server dropped frames, which ones is unknown: every request
      // sent until now and still unanswered is sent again after a while (a late answer still counts).
      this.#tokens = 0;
      this.#perMs = Math.max(this.#perMs / 2, PER_MS / 16);
      const refused = request ? [request] : eventId === undefined ? [...this.#requests.values()] : [];
      for (const r of refused) if (r.sent) this.#resendLater(r, RESEND_MS + Math.random() * RESEND_MS);
      return;
    }
    if (!request) return;
    this.#remove(request);
    for (const waiter of request.waiters) waiter.reject(error);
  }

  #resendLater(request: Request, ms: number): void {
    clearTimeout(request.timer);
    request.timer = setTimeout(() => {
      request.timer = undefined;
      if (!this.#requests.has(request.requestId) || !request.sent) return;
      request.sent = false;
      this.#queue.unshift(request);
      this.#send();
    }, ms);
  }

  /** Sends what is waiting, as far as the budget allows; schedules the rest. */
  #send(): void {
    if (this.#client.state !== 'open') return;
    let inFlight = 0;
    for (const request of this.#requests.values()) if (request.sent) inFlight += 1;
    while (this.#queue.length > 0 && inFlight < MAX_IN_FLIGHT) {
      const now = Date.now();
      this.#tokens = Math.min(BURST, this.#tokens + (now - this.#tokensAt) * this.#perMs);
      this.#tokensAt = now;
      if (this.#tokens < 1) {
        this.#pump ??= setTimeout(
          () => {
            this.#pump = undefined;
            this.#send();
          },
          (1 - this.#tokens) / this.#perMs,
        );
        return;
      }
      this.#tokens -= 1;
      const request = this.#queue.shift() as Request;
      request.sent = true;
      inFlight += 1;
      this.#client.send({
        type: 'get_resource',
        id: request.requestId,
        payload: { kind: request.kind, resource_id: request.id },
      });
      const timeout = ANSWER_TIMEOUT_MS * 2 ** Math.min(request.sends, 2);
      request.sends += 1;
      this.#resendLater(request, timeout + Math.random() * RESEND_MS);
    }
  }
}
