import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OutboundStats } from './outbound.js';

/** The hub's Prometheus metrics, in a registry of its own (several hubs can live in one process). */
export class HubMetrics {
  readonly registry = new Registry();
  /** Counted by the connections' outboxes on every write, turned into counters when scraped. */
  readonly outbound: OutboundStats = { sent: 0, dropped: 0 };
  readonly connections = new Gauge({
    name: 'atp_ws_connections',
    help: 'Open WebSocket connections',
    registers: [this.registry],
  });
  readonly connectionsByTransport = new Gauge({
    name: 'atp_ws_transport_connections',
    help: 'Open connections by transport: websocket, or sse (the fallback)',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly connectionsTotal = new Counter({
    name: 'atp_ws_connections_total',
    help: 'WebSocket connections accepted',
    registers: [this.registry],
  });
  readonly upgradesRefused = new Counter({
    name: 'atp_ws_upgrades_refused_total',
    help: 'Upgrade requests refused, by HTTP status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly messagesIn = new Counter({
    name: 'atp_ws_messages_in_total',
    help: 'Messages received from clients',
    registers: [this.registry],
  });
  readonly messagesOut: Counter = new Counter({
    name: 'atp_ws_messages_out_total',
    help: 'Data messages sent to clients',
    registers: [this.registry],
    collect: (): void => this.#collect('sent', this.messagesOut),
  });
  readonly published = new Counter({
    name: 'atp_ws_published_total',
    help: 'Data messages fanned out by this process',
    registers: [this.registry],
  });
  readonly drops: Counter = new Counter({
    name: 'atp_ws_dropped_total',
    help: 'Superseded progress messages coalesced away for slow consumers',
    registers: [this.registry],
    collect: (): void => this.#collect('dropped', this.drops),
  });
  readonly slowConsumerCloses = new Counter({
    name: 'atp_ws_slow_consumer_closes_total',
    help: 'Connections closed with 1013 because their outbound buffer overflowed',
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'atp_ws_client_errors_total',
    help: 'error messages sent to clients, by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly replayed = new Counter({
    name: 'atp_ws_replayed_total',
    help: 'History messages replayed to resuming or replaying clients',
    registers: [this.registry],
  });
  readonly gaps = new Counter({
    name: 'atp_ws_resume_gaps_total',
    help: 'Resumes that could not recover every missed message, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly reconnects = new Counter({
    name: 'atp_ws_reconnects_total',
    help: 'Connections accepted under a client_id this process had seen before',
    registers: [this.registry],
  });
  readonly bufferedBytes = new Gauge({
    name: 'atp_ws_buffered_bytes',
    help: 'Outbound bytes buffered for all connections (written but not flushed, or queued)',
    registers: [this.registry],
  });
  readonly lagMessages = new Gauge({
    name: 'atp_ws_lag_messages',
    help: 'Messages connections are behind the stream, summed: still to be replayed or queued',
    registers: [this.registry],
  });
  readonly lagSecondsMax = new Gauge({
    name: 'atp_ws_lag_seconds_max',
    help: 'Age of the oldest message a connection is still to receive, seconds',
    registers: [this.registry],
  });
  readonly replaysActive = new Gauge({
    name: 'atp_ws_replays_active',
    help: 'Connections with a replay of history in progress',
    registers: [this.registry],
  });
  readonly brokerUp = new Gauge({
    name: 'atp_ws_broker_up',
    help: '1 when the broker is reachable, 0 during an outage',
    registers: [this.registry],
  });
  readonly publishToSend = new Histogram({
    name: 'atp_ws_publish_to_send_seconds',
    help: 'Time from a message being appended to the broker to its fan-out being written to sockets',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  constructor() {
    this.brokerUp.set(1);
  }

  #collect(stat: keyof OutboundStats, counter: Counter): void {
    counter.reset();
    counter.inc(this.outbound[stat]);
  }
}
