import type { Connection } from './connection.js';

/**
 * Server-side heartbeat: every `interval` ms each connection gets a ping
 * frame; one that has not answered `timeout` ms later is terminated, which
 * frees its resources through the normal close path.
 */
export class Heartbeat {
  #interval: NodeJS.Timeout | undefined;
  #checks = new Set<NodeJS.Timeout>();

  constructor(
    readonly connections: () => Iterable<Connection>,
    readonly interval: number,
    readonly timeout: number,
    readonly onBeat: () => void = () => {},
  ) {}

  start(): void {
    this.#interval = setInterval(() => this.beat(), this.interval);
    this.#interval.unref();
  }

  /** Pings every connection and schedules the check of their answers. */
  beat(): void {
    this.onBeat();
    const pinged: Connection[] = [];
    for (const connection of this.connections()) {
      connection.alive = false;
      try {
        connection.ws.ping();
        pinged.push(connection);
      } catch {
        connection.ws.terminate();
      }
    }
    const check = setTimeout(() => {
      this.#checks.delete(check);
      for (const connection of pinged) {
        if (!connection.alive) connection.ws.terminate();
      }
    }, this.timeout);
    check.unref();
    this.#checks.add(check);
  }

  stop(): void {
    clearInterval(this.#interval);
    for (const check of this.#checks) clearTimeout(check);
    this.#checks.clear();
  }
}
