/**
 * Token bucket: `rate` tokens per second, at most `burst` stored. Time comes
 * from an injectable clock so tests can drive it.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    readonly now: () => number = Date.now,
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Takes one token when there is one and answers 0, else answers the ms until there is one (taking nothing). */
  takeOrWait(): number {
    if (this.take()) return 0;
    return Math.ceil(((1 - this.#tokens) / this.rate) * 1000);
  }

  #refill(): void {
    const now = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
  }
}

/** Counts live connections in total and per IP, for the upgrade limits. */
export class ConnectionCounter {
  #total = 0;
  #perIp = new Map<string, number>();

  get total(): number {
    return this.#total;
  }

  countFor(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  add(ip: string): void {
    this.#total += 1;
    this.#perIp.set(ip, this.countFor(ip) + 1);
  }

  remove(ip: string): void {
    this.#total -= 1;
    const left = this.countFor(ip) - 1;
    if (left > 0) this.#perIp.set(ip, left);
    else this.#perIp.delete(ip);
  }
}
