import type { ClientInfo } from '@atp/ws-server';
import type { Redis } from 'ioredis';

/**
 * Each process keeps its client list under `<prefix>:presence:<server id>`
 * with a TTL it refreshes; a process that dies stops refreshing and its
 * clients disappear from the listing within the TTL.
 */
export class Presence {
  constructor(
    readonly redis: Redis,
    readonly keyPrefix: string,
    readonly ttlMs: number,
  ) {}

  async report(serverId: string, clients: readonly ClientInfo[]): Promise<void> {
    const key = this.keyPrefix + serverId;
    if (clients.length === 0) {
      await this.redis.del(key);
      return;
    }
    const withServer = clients.map((client) => ({ ...client, server_id: serverId }));
    await this.redis.set(key, JSON.stringify(withServer), 'PX', this.ttlMs);
  }

  async list(): Promise<ClientInfo[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await this.redis.scan(cursor, 'MATCH', `${this.keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await this.redis.mget(...keys);
    return values.flatMap((value) => (value ? (JSON.parse(value) as ClientInfo[]) : []));
  }
}
