import { randomBytes } from 'node:crypto';
import type { Connection } from './connection.js';

/**
 * Server-side heartbeat: every `interval` ms each connection gets a ping
 * frame with a fresh payload; one that has not echoed it in a pong `timeout`
 * ms later is terminated, which frees its resources through the normal close
 * path. A peer that stopped reading cannot echo it, whatever pongs it sends,
 * and its frames queue behind what it does not read.
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
    // Each beat's ping carries fresh bytes the pong must echo: only a peer that read the ping is alive.
    const data = randomBytes(8);
    for (const connection of this.connections()) {
      try {
        connection.ping(data);
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
