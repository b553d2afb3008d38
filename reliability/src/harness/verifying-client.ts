import { WebSocket } from 'ws';
import type { Profile } from './workload.js';

/**
 * A lean raw client for thousands of connections: subscribes to a profile's
 * subscriptions and checks every data message as it arrives, against the
 * profile's expected offsets: the next expected one, with the next sequence.
 * It keeps counters, not messages, so its memory stays flat.
 */
export class VerifyingClient {
  readonly ws: WebSocket;
  /** Data messages received (and checked). */
  received = 0;
  /** The first problems seen, for the failure message. */
  readonly problems: string[] = [];
  #acks = 0;
  #onAcked: (() => void) | undefined;

  constructor(
    url: string,
    readonly profile: Profile,
    localAddress: string,
    /** Offset of the first message this client may receive is greater than this. */
    readonly after: number,
  ) {
    this.ws = new WebSocket(url, { localAddress, perMessageDeflate: false });
    this.ws.on('message', (data) => this.#onMessage(String(data)));
    this.ws.on('error', (error) => this.#problem(`socket error: ${error.message}`));
  }

  /** Opens, subscribes to every subscription of the profile, resolves once each is acknowledged. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('error', reject);
      this.ws.once('open', () => {
        this.#onAcked = resolve;
        for (const [i, payload] of this.profile.subscriptions.entries()) {
          this.ws.send(JSON.stringify({ type: 'subscribe', id: i, payload }));
        }
      });
    });
  }

  /** Every expected message has arrived. */
  get complete(): boolean {
    return this.received >= this.profile.expected.length;
  }

  #onMessage(text: string): void {
    const message = JSON.parse(text) as { type: string; sequence?: number; offset?: number; id?: unknown };
    if (message.sequence === undefined) {
      if (message.type === 'subscribed' && ++this.#acks === this.profile.subscriptions.length)
        this.#onAcked?.();
      else if (message.type === 'error') this.#problem(`error message: ${text}`);
      return;
    }
    const index = this.received;
    const expectedOffset = this.profile.expected[index];
    if (message.sequence !== index + 1) {
      this.#problem(`sequence ${message.sequence} where ${index + 1} was due`);
    }
    if (message.offset !== expectedOffset || (message.offset ?? 0) <= this.after) {
      this.#problem(`offset ${message.offset} where ${expectedOffset} was due (message ${index + 1})`);
    }
    this.received += 1;
  }

  #problem(text: string): void {
    if (this.problems.length < 5) this.problems.push(text);
  }
}
