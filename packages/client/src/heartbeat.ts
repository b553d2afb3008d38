/**
 * The client heartbeat: an application `ping` every `interval` ms; when no
 * frame at all arrives within `timeout` ms of a ping, the connection is dead.
 * Any inbound frame counts (see {@link Heartbeat.alive}), so a burst of data
 * that delays the `pong` is not mistaken for a dead peer.
 */
export class Heartbeat {
  #interval: ReturnType<typeof setInterval> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param interval ms between pings; 0 turns the heartbeat off
   * @param timeout ms to wait for any frame after a ping
   * @param ping sends one ping
   * @param dead called once when the timeout passes
   */
  constructor(
    readonly interval: number,
    readonly timeout: number,
    readonly ping: () => void,
    readonly dead: () => void,
  ) {}

  /** Starts pinging (after `connected`). */
  start(): void {
    this.stop();
    if (this.interval > 0) this.#interval = setInterval(() => this.#beat(), this.interval);
  }

  /** Stops pinging and forgets a pending deadline. */
  stop(): void {
    clearInterval(this.#interval);
    this.alive();
  }

  /** A frame arrived: the connection is alive. */
  alive(): void {
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
  }

  // #region ESM/CJS only
  /** Pings now (unless a ping already waits for an answer): the connection must prove it is alive. */
  probe(): void {
    this.#beat();
  }
  // #endregion

  #beat(): void {
    if (this.#deadline !== undefined) return;
    this.ping();
    this.#deadline = setTimeout(() => this.dead(), this.timeout);
  }
}
