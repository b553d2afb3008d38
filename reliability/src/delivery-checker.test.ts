import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runSchedule, minimalLog, type RunResult } from './checker/executor.js';
import { makeMessage } from './checker/messages.js';
import { type ClientEvent, type ClientRecord, checkClient, type Published, subKey } from './checker/model.js';
import { generate } from './checker/schedule.js';
import { figure } from './harness/common.js';

// Replay one seed: CHECKER_SEED=123. Run more: CHECKER_SCHEDULES=500 CHECKER_SECONDS=3600.
const SEED = process.env.CHECKER_SEED ? Number(process.env.CHECKER_SEED) : undefined;
const SCHEDULES = Number(process.env.CHECKER_SCHEDULES ?? (SEED === undefined ? 1000 : 1));
const SECONDS = Number(process.env.CHECKER_SECONDS ?? 140);
const FIRST_SEED = Number(process.env.CHECKER_FIRST_SEED ?? 1);

describe('the delivery checker model', () => {
  // Ten logs of suite 1 published one by one; a client subscribed to logs before the first.
  const log: Published[] = Array.from({ length: 10 }, (_, k) => ({
    k,
    message: makeMessage(k, 0, 0, false),
    status: 'ok',
    start: 10 + 2 * k,
    end: 11 + 2 * k,
  }));
  const sub = { topic: 'logs', filter: { suite_execution_id: 1 } };
  const record = (data: Array<[k: number, seq: number]>, extra: ClientEvent[] = []): ClientRecord => {
    const head: ClientEvent[] = [
      { kind: 'connect', at: 1, hub: 0 },
      { kind: 'open', at: 2, sub: subKey(sub) },
    ];
    const events: ClientEvent[] = [
      ...head,
      ...data.map(
        ([k, seq], i): ClientEvent => ({ kind: 'data', at: 100 + i, k, seq, epoch: 'e', offset: k + 1 }),
      ),
      ...extra,
    ].sort((a, b) => a.at - b.at);
    return { name: 'c0', subs: new Map([[subKey(sub), sub]]), events };
  };
  const all = log.map((p, i): [number, number] => [p.k, i + 1]);
  const kinds = (r: ClientRecord) => checkClient({ log, resets: [] }, r).map((v) => v.kind);

  it('accepts a complete, ordered, once-only delivery', () => {
    expect(kinds(record(all))).toEqual([]);
  });
  it('reports a message removed', () => {
    const removed = all.filter(([k]) => k !== 4).map(([k], i): [number, number] => [k, i + 1]);
    expect(kinds(record(removed))).toEqual(['lost']);
  });
  it('reports a message duplicated', () => {
    const duplicated = [
      ...all.slice(0, 5),
      [4, 6] as [number, number],
      ...all.slice(5).map(([k, s]): [number, number] => [k, s + 1]),
    ];
    expect(kinds(record(duplicated))).toContain('duplicate');
  });
  it('reports messages reordered', () => {
    const swapped = all.map(([k, s]): [number, number] => [k === 3 ? 4 : k === 4 ? 3 : k, s]);
    expect(kinds(record(swapped))).toContain('order');
  });
  it('reports a hole in the sequence numbers without a gap', () => {
    const holed = all.map(([k, s]): [number, number] => [k, s > 5 ? s + 1 : s]);
    expect(kinds(record(holed))).toEqual(['sequence']);
  });
  it('accepts a missing message covered by a declared gap, not one before the gap', () => {
    const removed = all
      .filter(([k]) => k !== 4)
      .map(([k], i): [number, number] => [k, i < 4 ? i + 1 : i + 2]);
    // Delivered at ticks 100..108; the gap comes before k=5 (tick 104).
    const gap: ClientEvent = { kind: 'gap', at: 103.5, why: 'test' };
    expect(kinds(record(removed, [gap]))).toEqual([]);
    const late: ClientEvent = { kind: 'gap', at: 200, why: 'test' };
    expect(kinds(record(removed, [late]))).toEqual(expect.arrayContaining(['lost']));
  });
  it('does not require what a subscription did not match, or what was published before it', () => {
    const other = { topic: 'logs', filter: { suite_execution_id: 2 } };
    const r = record([]);
    r.subs.clear();
    r.subs.set(subKey(other), other);
    r.events.splice(1, 1, { kind: 'open', at: 2, sub: subKey(other) });
    expect(kinds(r)).toEqual([]);
    const lateOpen = record(all.slice(5).map(([k], i): [number, number] => [k, i + 1]));
    (lateOpen.events[1] as { at: number }).at = 19.5; // opened after k=4 was published
    expect(kinds(lateOpen)).toEqual([]);
  });
});

function report(result: RunResult): string {
  const { schedule } = result;
  const lines = [
    `seed ${schedule.seed}: ${schedule.broker} broker, ${schedule.hubs} hub(s)${schedule.redisDownAtStart ? ', Redis down at start' : ''}, clients ${JSON.stringify(schedule.clients)}`,
    `  replay: pnpm build && CHECKER_SEED=${schedule.seed} pnpm --filter @atp/reliability reliability src/delivery-checker.test.ts`,
  ];
  const seen = new Set<string>();
  for (const violation of result.violations) {
    const key = `${violation.kind}:${violation.client}`;
    if (seen.has(key)) continue;
    seen.add(key);
    lines.push(`  ${violation.kind} (${violation.client}): ${violation.what}`);
    for (const line of minimalLog(result, violation)) lines.push(`      ${line}`);
  }
  return lines.join('\n');
}

describe('the delivery checker', () => {
  it(
    'delivers every expected message once and in order, or declares the gap, under random schedules',
    async () => {
      const deadline = Date.now() + SECONDS * 1000;
      const failures: RunResult[] = [];
      let schedules = 0;
      let ops = 0;
      let published = 0;
      let delivered = 0;
      let maxHeapGrowth = 0;
      const faults: Record<string, number> = {};
      const brokers = { memory: 0, redis: 0 };
      for (let i = 0; i < SCHEDULES && Date.now() < deadline; i++) {
        const schedule = generate(SEED ?? FIRST_SEED + i);
        const result = await runSchedule(schedule);
        schedules += 1;
        brokers[schedule.broker] += 1;
        ops += schedule.ops.length;
        published += result.published;
        delivered += result.delivered;
        for (const [name, n] of Object.entries(result.faults)) faults[name] = (faults[name] ?? 0) + n;
        for (const h of result.heap) maxHeapGrowth = Math.max(maxHeapGrowth, h.peak - h.baseline);
        if (result.violations.length > 0) {
          failures.push(result);
          if (process.env.CHECKER_TRACE) {
            const trace = {
              opLog: result.opLog,
              log: result.log.map((p) => ({
                k: p.k,
                type: p.message.type,
                status: p.status,
                start: p.start,
                end: p.end,
              })),
              records: result.records.map((r) => ({
                name: r.name,
                subs: [...r.subs.keys()],
                events: r.events,
              })),
            };
            writeFileSync(
              `${process.env.CHECKER_TRACE}/checker-${schedule.seed}.json`,
              JSON.stringify(trace, null, 1),
            );
          }
          console.log(report(result));
        }
      }
      figure('delivery-checker', {
        schedules,
        memory: brokers.memory,
        redis: brokers.redis,
        ops,
        published,
        delivered,
        maxHeapGrowthMiB: maxHeapGrowth / 1024 / 1024,
        failing: failures.length,
        ...Object.fromEntries(Object.entries(faults).map(([k, v]) => [`fault_${k}`, v])),
      });
      expect(schedules).toBeGreaterThan(0);
      expect(failures.map((f) => report(f)).join('\n\n')).toBe('');
    },
    (SECONDS + 120) * 1000,
  );
});
