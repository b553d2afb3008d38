import type { ClientInfo } from '@atp/ws-server';
import type { Cluster, Redis } from 'ioredis';

const CLAIM_SCRIPT = `
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

/**
 * Each process keeps its client list under `<prefix>:presence:<server id>`
 * with a TTL it refreshes, and its id in the sorted set `<prefix>:presence`
 * scored by when that list expires; a process that dies stops refreshing and
 * its clients disappear from the listing within the TTL. Session keys
 * remember which principal owns a `client_id`, across processes.
 */
export class Presence {
  constructor(
    readonly redis: Redis | Cluster,
    readonly keyPrefix: string,
    readonly indexKey: string,
    readonly ttlMs: number,
    readonly sessionPrefix: string,
    readonly sessionTtlMs: number,
  ) {}

  async report(serverId: string, clients: readonly ClientInfo[]): Promise<void> {
    const key = this.keyPrefix + serverId;
    if (clients.length === 0) {
      await this.redis.pipeline().del(key).zrem(this.indexKey, serverId).exec();
      return;
    }
    const withServer = clients.map((client) => ({ ...client, server_id: serverId }));
    const pipeline = this.redis
      .pipeline()
      .set(key, JSON.stringify(withServer), 'PX', this.ttlMs)
      .zadd(this.indexKey, Date.now() + this.ttlMs, serverId)
      .pexpire(this.indexKey, this.ttlMs * 4);
    // Sessions of connected clients stay claimed as long as their process reports them.
    for (const client of clients) pipeline.pexpire(this.sessionKey(client.client_id), this.sessionTtlMs);
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  /** Claims `clientId` for `principalId` unless another principal holds it. */
  async claim(clientId: string, principalId: string | null, ttlMs: number): Promise<boolean> {
    const claimed = await this.redis.eval(
      CLAIM_SCRIPT,
      1,
      this.sessionKey(clientId),
      principalId ?? '',
      ttlMs,
    );
    return claimed === 1;
  }

  sessionKey(clientId: string): string {
    return `${this.sessionPrefix}${clientId}`;
  }

  async list(): Promise<ClientInfo[]> {
    // Processes whose list expired are dropped from the index; their keys are gone with their TTL.
    await this.redis.zremrangebyscore(this.indexKey, '-inf', String(Date.now()));
    const ids = await this.redis.zrange(this.indexKey, '0', '-1');
    if (ids.length === 0) return [];
    const values = await this.redis.mget(...ids.map((id) => this.keyPrefix + id));
    return values.flatMap((value) => (value ? (JSON.parse(value) as ClientInfo[]) : []));
  }
}
