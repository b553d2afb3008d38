import { random } from '../harness/workload.js';
import { SUB_POOL } from './messages.js';

/** One operation of a schedule. Client and hub numbers are indexes; the executor skips what does not apply. */
export type Op =
  | {
      op: 'publish';
      via: 'hub' | 'rest' | 'publisher';
      hub: number;
      shapes: number[];
      pad: number;
      shared: boolean;
    }
  | {
      op: 'subscribe';
      client: number;
      sub: number;
      from?: 'start' | 'past' | 'future' | 'gone';
      pick: number;
    }
  | { op: 'unsubscribe'; client: number; sub: number }
  | { op: 'drop'; client: number; blockWebSocket?: boolean }
  | { op: 'resume'; client: number; hub: number; craft?: 'future' | 'gone'; blockWebSocket?: boolean }
  | { op: 'pause'; client: number }
  | { op: 'unpause'; client: number }
  | { op: 'kill'; hub: number }
  | { op: 'redis-restart' }
  | { op: 'redis-snapshot' }
  | { op: 'redis-rollback' }
  | { op: 'redis-failover'; lagMs: number }
  | { op: 'sleep'; ms: number };

export interface ClientSpec {
  readonly kind: 'raw' | 'atp';
  readonly hub: number;
  readonly subs: number[];
  /**
   * An `atp` client behind `@atp/ws-client/fallback`: its WebSocket can be blocked (the `drop` and
   * `resume` ops say when), and it then goes on over the SSE stream, resuming across the switch.
   */
  readonly fallback?: boolean;
}

export interface Schedule {
  readonly seed: number;
  readonly broker: 'memory' | 'redis';
  readonly hubs: number;
  /** Redis is down while the hubs start, and comes up a moment later. */
  readonly redisDownAtStart: boolean;
  readonly clients: readonly ClientSpec[];
  readonly ops: readonly Op[];
}

/** The schedule of a seed: which broker, how many hubs and clients, and 30 to 70 operations. */
export function generate(seed: number): Schedule {
  const rand = random(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const broker = rand() < 0.3 ? 'memory' : 'redis';
  const hubs = broker === 'memory' ? 1 : 1 + int(3);
  const redisDownAtStart = broker === 'redis' && rand() < 0.15;
  const clients: ClientSpec[] = Array.from({ length: 3 + int(4) }, (_, i) => ({
    kind: i % 3 === 2 ? 'atp' : 'raw',
    hub: int(hubs),
    subs: Array.from({ length: 1 + int(3) }, () => int(SUB_POOL.length)),
  }));
  const ops: Op[] = [];
  const count = 30 + int(41);
  const client = () => int(clients.length);
  const raw = () => {
    const candidates = clients.flatMap((c, i) => (c.kind === 'raw' ? [i] : []));
    return candidates[int(candidates.length)] as number;
  };
  for (let i = 0; i < count; i++) {
    const roll = rand();
    if (roll < 0.36) {
      const vias: Array<'hub' | 'rest' | 'publisher'> =
        broker === 'redis' ? ['hub', 'rest', 'publisher'] : ['hub', 'rest'];
      const bulk = rand() < 0.15;
      ops.push({
        op: 'publish',
        via: vias[int(vias.length)] as 'hub',
        hub: int(hubs),
        shapes: Array.from({ length: bulk ? 20 + int(40) : 1 + int(6) }, () => int(18)),
        pad: bulk ? 8192 + int(16384) : int(512),
        shared: rand() < 0.3,
      });
    } else if (roll < 0.48) {
      const froms = [undefined, undefined, 'start', 'past', 'future', 'gone'] as const;
      const from = froms[int(froms.length)];
      ops.push({
        op: 'subscribe',
        client: from ? raw() : client(),
        sub: int(SUB_POOL.length),
        ...(from ? { from } : {}),
        pick: int(1000),
      });
    } else if (roll < 0.53) {
      ops.push({ op: 'unsubscribe', client: client(), sub: int(SUB_POOL.length) });
    } else if (roll < 0.61) {
      ops.push({ op: 'drop', client: client() });
    } else if (roll < 0.71) {
      const crafts = [undefined, undefined, undefined, 'future', 'gone'] as const;
      const craft = crafts[int(crafts.length)];
      ops.push({
        op: 'resume',
        client: craft ? raw() : client(),
        hub: int(hubs),
        ...(craft ? { craft } : {}),
      });
    } else if (roll < 0.76) {
      ops.push({ op: 'pause', client: raw() });
    } else if (roll < 0.8) {
      ops.push({ op: 'unpause', client: raw() });
    } else if (roll < 0.83) {
      ops.push({ op: 'kill', hub: int(hubs) });
    } else if (roll < 0.86 && broker === 'redis') {
      ops.push({ op: 'redis-restart' });
    } else if (roll < 0.9 && broker === 'redis') {
      // One draw, as before this fault existed, so that older seeds keep the rest of their schedule.
      const pick = rand();
      if (pick < 0.4) ops.push({ op: 'redis-snapshot' });
      else if (pick < 0.8) ops.push({ op: 'redis-rollback' });
      else ops.push({ op: 'redis-failover', lagMs: ops.length % 2 === 0 ? 0 : 150 });
    } else {
      ops.push({ op: 'sleep', ms: 20 + int(300) });
    }
  }
  // Transport switches come from a stream of their own, so that every seed keeps the schedule it had
  // before they existed and only gains them.
  const transport = random(seed * 2 + 1);
  const withFallback = clients.map((c) =>
    c.kind === 'atp' && transport() < 0.5 ? { ...c, fallback: true } : c,
  );
  for (const [i, op] of ops.entries()) {
    if ((op.op === 'drop' || op.op === 'resume') && withFallback[op.client]?.fallback && transport() < 0.7)
      ops[i] = { ...op, blockWebSocket: transport() < 0.6 };
  }
  return { seed, broker, hubs, redisDownAtStart, clients: withFallback, ops };
}

/** One line per operation, as printed in a failure's operation log. */
function blocking(blocked: boolean | undefined): string {
  if (blocked === undefined) return '';
  return blocked ? ', WebSocket blocked from now on (SSE fallback)' : ', WebSocket unblocked';
}

export function describeOp(op: Op): string {
  switch (op.op) {
    case 'publish':
      return `publish ${op.shapes.length} via ${op.via}${op.via === 'publisher' ? '' : ` on hub ${op.hub}`} (pad ${op.pad}${op.shared ? ', shared progress keys' : ''})`;
    case 'subscribe':
      return `client ${op.client} subscribes ${JSON.stringify(SUB_POOL[op.sub])}${op.from ? ` from ${op.from}` : ''}`;
    case 'unsubscribe':
      return `client ${op.client} unsubscribes ${JSON.stringify(SUB_POOL[op.sub])}`;
    case 'drop':
      return `client ${op.client} drops its connection${blocking(op.blockWebSocket)}`;
    case 'resume':
      return `client ${op.client} resumes on hub ${op.hub}${op.craft ? ` with a ${op.craft === 'future' ? 'position ahead of the stream' : 'gone epoch'}` : ''}${blocking(op.blockWebSocket)}`;
    case 'pause':
      return `client ${op.client} stops reading`;
    case 'unpause':
      return `client ${op.client} reads again`;
    case 'kill':
      return `kill -9 hub ${op.hub}, restart it`;
    case 'redis-restart':
      return 'Redis killed and restarted empty';
    case 'redis-snapshot':
      return 'DUMP of the broker keys (for a rollback)';
    case 'redis-rollback':
      return 'RESTORE of the broker keys as DUMPed (rollback)';
    case 'redis-failover':
      return `failover of the Redis primary to a replica${op.lagMs > 0 ? ` that missed the last ${op.lagMs} ms of writes` : ''}`;
    case 'sleep':
      return `sleep ${op.ms} ms`;
  }
}
