import { setTimeout as delay } from 'node:timers/promises';
import { redisCommand, startSentinelSet } from '@atp/test-utils';
import { describe, expect, it } from 'vitest';
import { RedisBroker } from '../index.js';
import { disposer, log } from './helpers.js';

const NAME = 'atp-primary';

/** Resolves once `check` resolves true (a rejection counts as false); rejects after `ms`. */
async function until(check: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(50);
  }
}

describe('Redis Sentinel reconnection', () => {
  it('publishes again after a failover announced while the broker was still asking a sentinel where the primary is', async () => {
    const set = await startSentinelSet({ name: NAME });
    disposer.add(() => set.stop());
    const { primary, replica, sentinels, sentinel } = set;
    const [slow, ...others] = sentinels;
    if (!slow) throw new Error('no sentinel');
    const broker = new RedisBroker({ sentinel, prefix: 'atp-test:sentinel-reconnect', blockMs: 100 });
    disposer.add(() => broker.close());
    await broker.subscribe(() => {});
    await until(
      async () => {
        await broker.publish([log(1, 'before')]);
        return true;
      },
      'a first publish',
      10_000,
    );

    // The sentinel the broker asks first (the one that answered it) stops answering: after the kill, the
    // broker's reconnection waits on it, as it would on a sentinel slowed down by a loaded machine.
    process.kill(slow.pid ?? 0, 'SIGSTOP');
    disposer.add(() => void process.kill(slow.pid ?? 0, 'SIGCONT'));
    await primary.kill();
    // The two other sentinels promote the replica and announce it (+switch-master) while that question is
    // still unanswered.
    await until(
      async () =>
        (
          await Promise.all(
            others.map(
              async (s) =>
                (
                  (await redisCommand(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME])) as string[]
                )[1] === String(replica.port),
            ),
          )
        ).every(Boolean),
      'the two other sentinels to promote the replica',
      20_000,
    );
    await delay(500);
    process.kill(slow.pid ?? 0, 'SIGCONT');

    // The broker follows the promotion: publishing works again, with no restart.
    const errors = new Set<string>();
    let published = false;
    const deadline = Date.now() + 10_000;
    while (!published && Date.now() < deadline) {
      try {
        await broker.publish([log(1, 'after')]);
        published = true;
      } catch (error) {
        errors.add((error as Error).message);
        await delay(100);
      }
    }
    expect(published, `published after the failover; refused with: ${[...errors].join(' | ')}`).toBe(true);
  }, 60_000);
});
