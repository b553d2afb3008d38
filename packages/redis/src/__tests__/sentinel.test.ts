import { setTimeout as delay } from 'node:timers/promises';
import { redisCommand, startSentinelSet } from '@atp/test-utils';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { keysFor, type RawStreamEntry, toEntries } from '../streams.js';
import { assertBuilt, HubProcess } from './fixtures/hub-processes.js';
import { ResumingClient } from './fixtures/resuming-client.js';
import { createRedisPublisher } from '../index.js';
import { disposer, log } from './helpers.js';

beforeAll(() => assertBuilt());

const NAME = 'atp-primary';

/** `<label>-<i>` → [label, i] */
function parse(text: string): [string, number] {
  const dash = text.lastIndexOf('-');
  return [text.slice(0, dash), Number(text.slice(dash + 1))];
}

describe('Redis Sentinel', () => {
  it.each([
    ['with the replica up to date', 'in-sync'],
    ['with writes the replica never got (acknowledged, then lost by the failover)', 'replica-cut'],
    ['with writes the replica never got and no hub read (clients miss them: the gap covers them)', 'unread'],
  ])(
    'follows a failover after kill -9 of the primary while two hub processes publish, %s: every client gets every message once and in order, or an explicit gap covering exactly what Redis lost',
    async (_, variant) => {
      const lossy = variant !== 'in-sync';
      const set = await startSentinelSet({ name: NAME });
      disposer.add(() => set.stop());
      const { primary, replica, sentinels, sentinel } = set;
      const prefix = 'atp-test:sentinel';
      const hubs = await Promise.all([0, 1].map(() => HubProcess.start({ sentinel, prefix, blockMs: 100 })));
      for (const hub of hubs) disposer.add(() => hub.kill());
      const clients: ResumingClient[] = [];
      for (const [h, hub] of hubs.entries()) {
        for (const k of [0, 1]) {
          const client = new ResumingClient(hub.url, `sentinel-${h}-${k}`, [{ topic: 'logs' }]);
          disposer.add(() => client.close());
          await client.start();
          clients.push(client);
        }
      }

      const unread = createRedisPublisher({ sentinel, prefix });
      disposer.add(() => unread.close());
      const unreadAcked: number[] = [];
      const publishing = hubs.map((hub, h) =>
        hub.publishFor({ label: `hub${h}`, ms: 9000, window: 4, settleMs: 20_000 }),
      );
      await delay(2000);
      const killedAt = Date.now();
      const replicaPid = replica.pid ?? 0;
      if (lossy) {
        // The replica stops hearing from the primary (stopped, its link cut) while the primary goes on
        // acknowledging writes; shorter than down-after-milliseconds, so the sentinels still promote it.
        process.kill(replicaPid, 'SIGSTOP');
        disposer.add(() => void process.kill(replicaPid, 'SIGCONT'));
        await redisCommand(primary.port, ['CLIENT', 'KILL', 'TYPE', 'replica']);
        if (variant === 'unread') {
          // The hubs stop too (their readers with them) while a publisher of the test's own goes on:
          // the primary acknowledges what neither the replica nor any hub will ever read.
          for (const hub of hubs) process.kill(hub.pid ?? 0, 'SIGSTOP');
          disposer.add(() => {
            for (const hub of hubs) if (hub.alive) process.kill(hub.pid ?? 0, 'SIGCONT');
          });
          const until = Date.now() + 300;
          for (let i = 0; Date.now() < until; i++) {
            await unread.publish(log(1, `unread-${i}`));
            unreadAcked.push(i);
          }
        } else await delay(300);
      }
      await primary.kill();
      if (lossy) process.kill(replicaPid, 'SIGCONT');
      if (variant === 'unread') for (const hub of hubs) process.kill(hub.pid ?? 0, 'SIGCONT');
      const results = await Promise.all(publishing);
      // Promoted: the sentinels name the former replica.
      const master = (await redisCommand(sentinels[0]?.port ?? 0, [
        'SENTINEL',
        'GET-MASTER-ADDR-BY-NAME',
        NAME,
      ])) as string[];
      expect(master[1]).toBe(String(replica.port));
      for (const [h, result] of results.entries()) {
        expect(result.acked.length, `hub${h} published after the failover`).toBeGreaterThan(0);
        expect(Math.max(...result.acked), `hub${h} published after the failover`).toBeGreaterThan(
          Math.max(0, ...result.failed.map(([i]) => i)),
        );
      }
      // A last message, after which every client must have everything.
      await hubs[0]?.publish({ label: 'end', count: 1 });
      await Promise.all(clients.map((client) => client.untilMessage('end-0', 15_000)));
      for (const client of clients) await client.ping();

      // What the new primary holds: anything acknowledged and not there was lost by Redis.
      const admin = new Redis(replica.port, '127.0.0.1');
      disposer.add(() => admin.quit());
      const held = new Set(
        toEntries((await admin.xrange(keysFor(prefix).stream, '-', '+')) as RawStreamEntry[]).map((entry) =>
          String((entry.message.payload as { message: string }).message),
        ),
      );
      const acked = new Set([
        ...results.flatMap((result, h) => result.acked.map((i) => `hub${h}-${i}`)),
        ...unreadAcked.map((i) => `unread-${i}`),
      ]);
      const lost = [...acked].filter((text) => !held.has(text));
      if (lossy) expect(lost.length, 'acknowledged writes lost by the failover').toBeGreaterThan(0);

      const gaps: number[] = [];
      const keptButMissed: number[] = [];
      for (const client of clients) {
        const texts = client.texts();
        const seen = new Map<string, number>();
        client.data.forEach((m, k) => {
          const text = String(m.payload.message);
          const first = seen.get(text);
          if (first !== undefined) {
            const show = (j: number) =>
              client.data
                .slice(Math.max(0, j - 3), j + 3)
                .map((d) => `${d.payload.message}@${d.epoch}/${d.offset}#${d.sequence}`);
            console.error(`${client.clientId}: ${text} twice:`, show(first), show(k));
          }
          seen.set(text, k);
        });
        expect(new Set(texts).size, `${client.clientId}: nothing twice`).toBe(texts.length);
        // In order per publisher.
        const last: Record<string, number> = {};
        for (const text of texts) {
          const [label, i] = parse(text);
          expect(i, `${client.clientId}: ${text} in order`).toBeGreaterThan(last[label] ?? -1);
          last[label] = i;
        }
        // Every hole in the numbering is explicit: a skipped sequence number and a new epoch after it.
        const holes: number[] = [];
        client.data.forEach((m, k) => {
          const before = client.data[k - 1];
          if (before && m.sequence !== (before.sequence as number) + 1) {
            holes.push(k);
            expect(m.epoch, `${client.clientId}: a new epoch after the gap`).not.toBe(before.epoch);
          }
        });
        expect(client.problems.every((p) => p.startsWith('sequence '))).toBe(true);
        // The failover is never silent: Redis changed under the hubs (a new run id), so every live client
        // sees a new epoch behind a skipped sequence number, whether or not anything was lost.
        expect(holes.length, `${client.clientId}: an explicit gap at the failover`).toBeGreaterThan(0);
        // Only what Redis lost is missing, and only where a hole is.
        const got = new Set(texts);
        const missing = [...acked].filter((text) => !got.has(text));
        const kept = missing.filter((text) => held.has(text));
        keptButMissed.push(kept.length);
        expect(kept, `${client.clientId}: missing though Redis has it`).toEqual([]);
        if (missing.length > 0)
          expect(holes.length, `${client.clientId}: a gap for what is missing`).toBeGreaterThan(0);
        // Where the hole must lie, by each publisher's own order (with the hubs stopped mid-call in the
        // 'unread' case their calls in flight land out of label order, so there only the gap is required).
        for (const text of variant === 'unread' ? [] : missing) {
          const [label, i] = parse(text);
          const positions = texts.map(parse);
          let lastBefore = -1;
          positions.forEach(([l, n], k) => {
            if (l === label && n < i) lastBefore = k;
          });
          const firstAfter = positions.findIndex(([l, n]) => l === label && n > i);
          // The hole lies between the neighbours of the missing message.
          if (!holes.some((k) => k > lastBefore && (firstAfter === -1 || k <= firstAfter))) {
            const show = (j: number) =>
              client.data
                .slice(Math.max(0, j - 2), j + 3)
                .map((d) => `${d.payload.message}@${d.epoch}/${d.offset}#${d.sequence}`);
            console.error(
              `${client.clientId}: ${text} missing; holes at ${holes};`,
              show(lastBefore),
              show(firstAfter),
            );
          }
          expect(
            holes.some((k) => k > lastBefore && (firstAfter === -1 || k <= firstAfter)),
            `${client.clientId}: ${text} is covered by a gap`,
          ).toBe(true);
        }
        gaps.push(missing.length);
      }

      if (variant === 'unread') {
        // Redis lost what only the primary had, and some of it no hub ever read.
        expect(Math.max(...gaps), 'messages no client got, covered by the gap').toBeGreaterThan(0);
      }
      const refused = results.flatMap((result) =>
        result.refusals.filter(([, end]) => end >= killedAt).map(([start, end]) => end - start),
      );
      console.info(
        `sentinel failover (${variant}): publishing refused for ${Math.max(0, ...refused)} ms after kill -9 of the primary; ` +
          `${acked.size} messages acknowledged, ${lost.length} of them lost by Redis, ` +
          `the clients' gaps covered ${Math.min(...gaps)}–${Math.max(...gaps)} messages ` +
          `(of which Redis had kept ${Math.min(...keptButMissed)}–${Math.max(...keptButMissed)}); ` +
          `${results.reduce((n, r) => n + r.failed.length, 0)} publish calls refused`,
      );
    },
    90_000,
  );
});
