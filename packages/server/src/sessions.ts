import type { Principal } from './types.js';

interface Session {
  principalId: string | null;
  /** When a disconnected session is forgotten; undefined while connected. */
  expiresAt: number | undefined;
  /** Connections under this `client_id` so far. */
  opens: number;
}

/**
 * Remembers which principal owns each `client_id`, while connected and for
 * `ttlMs` after, so that only the same principal can resume a session.
 */
export class SessionRegistry {
  #sessions = new Map<string, Session>();

  constructor(
    readonly ttlMs: number,
    readonly now: () => number = Date.now,
  ) {}

  mayUse(clientId: string, principal: Principal | null): boolean {
    const session = this.#sessions.get(clientId);
    if (!session) return true;
    if (session.expiresAt !== undefined && session.expiresAt <= this.now()) {
      this.#sessions.delete(clientId);
      return true;
    }
    return session.principalId === (principal?.id ?? null);
  }

  /** Records a connection under `clientId`; answers how many came before it while the session was remembered. */
  open(clientId: string, principal: Principal | null): number {
    const opens = this.#sessions.get(clientId)?.opens ?? 0;
    this.#sessions.set(clientId, {
      principalId: principal?.id ?? null,
      expiresAt: undefined,
      opens: opens + 1,
    });
    return opens;
  }

  closed(clientId: string): void {
    const session = this.#sessions.get(clientId);
    if (session) session.expiresAt = this.now() + this.ttlMs;
  }

  clear(): void {
    this.#sessions.clear();
  }

  /** Forgets expired sessions (called on every heartbeat, so the map stays bounded). */
  sweep(): void {
    const now = this.now();
    for (const [clientId, session] of this.#sessions) {
      if (session.expiresAt !== undefined && session.expiresAt <= now) this.#sessions.delete(clientId);
    }
  }
}
