import { describe, expect, it, vi } from 'vitest';
import { DeltaStore } from '../index.js';

const delta = (id: number | string, sequence: number, changes: Record<string, unknown>) => ({
  resource_type: 'test_execution',
  resource_id: id,
  sequence,
  changes,
});

describe('DeltaStore', () => {
  it('merges changes into the resource kept by (resource_type, resource_id)', () => {
    const store = new DeltaStore();
    store.apply(delta(456, 41, { status: 'running', score: null }));
    const result = store.apply(delta(456, 42, { status: 'completed', score: 0.95 }));
    expect(result).toEqual({
      applied: true,
      resource: {
        resourceType: 'test_execution',
        resourceId: 456,
        data: { status: 'completed', score: 0.95 },
        sequence: 42,
      },
    });
    expect(store.get('test_execution', 456)?.data).toEqual({ status: 'completed', score: 0.95 });
    expect(store.get('test_execution', '456')).toBeUndefined();
    expect(store.get('suite_execution', 456)).toBeUndefined();
  });

  it('reports a per-resource gap when a delta is not the previous sequence + 1, and still applies it', () => {
    const onGap = vi.fn();
    const store = new DeltaStore({ onGap });
    store.apply(delta(1, 1, { a: 1 }));
    store.apply(delta(2, 7, { b: 1 }));
    const result = store.apply(delta(1, 4, { a: 4 }));
    expect(result.gap).toEqual({ resourceType: 'test_execution', resourceId: 1, expected: 2, received: 4 });
    expect(onGap).toHaveBeenCalledTimes(1);
    expect(store.get('test_execution', 1)?.data).toEqual({ a: 4 });
    expect(store.apply(delta(2, 8, { b: 2 })).gap).toBeUndefined();
  });

  it('ignores a stale or duplicate delta', () => {
    const store = new DeltaStore();
    store.apply(delta(1, 5, { v: 5 }));
    expect(store.apply(delta(1, 5, { v: 'again' })).applied).toBe(false);
    expect(store.apply(delta(1, 3, { v: 3 })).applied).toBe(false);
    expect(store.get('test_execution', 1)?.data).toEqual({ v: 5 });
  });

  it('continues from a seed set after a refetch, and lists, deletes and clears', () => {
    const store = new DeltaStore<{ status?: string; score?: number }>();
    store.set('test_execution', 9, { status: 'running' }, 10);
    expect(store.apply(delta(9, 11, { score: 0.5 })).gap).toBeUndefined();
    expect(store.get('test_execution', 9)?.data).toEqual({ status: 'running', score: 0.5 });
    store.apply({ resource_type: 'suite_execution', resource_id: 'x', sequence: 1, changes: {} });
    expect(store.list().length).toBe(2);
    expect(store.list('suite_execution').map((r) => r.resourceId)).toEqual(['x']);
    expect(store.delete('test_execution', 9)).toBe(true);
    store.clear();
    expect(store.list()).toEqual([]);
  });

  it('notifies subscribers of every change until they unsubscribe', () => {
    const store = new DeltaStore();
    const seen: number[] = [];
    const stop = store.subscribe((resource) => seen.push(resource.sequence));
    store.apply(delta(1, 1, {}));
    store.apply(delta(1, 1, {}));
    stop();
    store.apply(delta(1, 2, {}));
    expect(seen).toEqual([1]);
  });
});
