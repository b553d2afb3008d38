import { describe, expect, it } from 'vitest';
import { confirmed, consecutive, newClient, progress, record, startHub } from './helpers.js';

describe('load', () => {
  it('receives 1,000 messages per second for 5 s without loss, in order, keeping up', async () => {
    const { hub, url } = await startHub();
    const ws = newClient(url);
    const rec = record(ws);
    const subscribed = confirmed(ws);
    ws.subscribe('test:progress', { suite_execution_id: 123 });
    await ws.connect();
    await subscribed;
    const perTick = 100;
    const ticks = 50;
    const started = Date.now();
    let lagging = 0;
    for (let tick = 0; tick < ticks; tick += 1) {
      // Paced by the wall clock: tick n is published at n × 100 ms.
      const due = started + tick * 100;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
      await hub.publish(Array.from({ length: perTick }, (_, i) => progress(tick * perTick + i + 1)));
      // The client keeps up: it never falls more than one second (1,000 messages) behind.
      lagging = Math.max(lagging, tick * perTick - rec.data.length);
    }
    const total = perTick * ticks;
    await rec.waitForData(total, 5000);
    const elapsed = Date.now() - started;
    expect(rec.data).toHaveLength(total);
    expect(rec.data.map((d) => d.payload.test_execution_id)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    expect(consecutive(rec.sequences())).toBe(true);
    expect(rec.gaps).toEqual([]);
    expect(lagging).toBeLessThanOrEqual(1000);
    expect(elapsed).toBeLessThan(8000);
  });
});
