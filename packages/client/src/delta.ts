import type { DeltaUpdatePayload } from '@atp/ws-protocol';

/** One resource kept by a {@link DeltaStore}. */
export interface DeltaResource<T extends object = Record<string, unknown>> {
  readonly resourceType: string;
  readonly resourceId: number | string;
  /** The resource's fields: the seed given to {@link DeltaStore.set}, with every applied `changes` merged in. */
  readonly data: Readonly<T>;
  /** The resource's own `sequence` of the last applied delta (or of the seed). */
  readonly sequence: number;
}

/** A per-resource gap: deltas `expected` … `received - 1` of this resource were never applied. */
export interface DeltaGap {
  readonly resourceType: string;
  readonly resourceId: number | string;
  readonly expected: number;
  readonly received: number;
}

/** What {@link DeltaStore.apply} did. */
export interface DeltaApplyResult<T extends object = Record<string, unknown>> {
  /** False when the delta was stale or a duplicate (its sequence is not after the resource's). */
  readonly applied: boolean;
  readonly resource: DeltaResource<T> | undefined;
  /** Set when deltas of this resource were missed: refetch it, then {@link DeltaStore.set} it. */
  readonly gap?: DeltaGap;
}

/** Options of {@link DeltaStore}. */
export interface DeltaStoreOptions {
  /** Called for every per-resource gap (also returned by {@link DeltaStore.apply}). */
  onGap?: (gap: DeltaGap) => void;
}

function keyOf(resourceType: string, resourceId: number | string): string {
  return `${resourceType}\u0000${typeof resourceId}:${resourceId}`;
}

/**
 * Keeps resources by `(resource_type, resource_id)` from `delta_update`
 * messages: merges each delta's `changes` into the resource and reports a gap
 * when a delta's own `sequence` is not the previous one + 1.
 *
 * @example
 * const store = new DeltaStore({ onGap: ({ resourceType, resourceId }) => refetch(resourceType, resourceId) });
 * ws.on('delta_update', (delta) => store.apply(delta));
 * ws.subscribe('delta', { resource_type: 'test_execution' });
 * store.get('test_execution', 456)?.data.status; // 'completed'
 */
export class DeltaStore<T extends object = Record<string, unknown>> {
  readonly #resources = new Map<string, DeltaResource<T>>();
  readonly #listeners = new Set<(resource: DeltaResource<T>) => void>();
  readonly #onGap: ((gap: DeltaGap) => void) | undefined;

  constructor(options: DeltaStoreOptions = {}) {
    this.#onGap = options.onGap;
  }

  /** Applies one `delta_update` payload. The first delta of an unknown resource starts it (no gap). */
  apply(delta: DeltaUpdatePayload): DeltaApplyResult<T> {
    const { resource_type: resourceType, resource_id: resourceId, sequence } = delta;
    const current = this.get(resourceType, resourceId);
    if (current && sequence <= current.sequence) return { applied: false, resource: current };
    const resource: DeltaResource<T> = {
      resourceType,
      resourceId,
      data: { ...current?.data, ...delta.changes } as T,
      sequence,
    };
    this.#store(resource);
    if (!current || sequence === current.sequence + 1) return { applied: true, resource };
    const gap: DeltaGap = { resourceType, resourceId, expected: current.sequence + 1, received: sequence };
    this.#onGap?.(gap);
    return { applied: true, resource, gap };
  }

  /** Sets a resource from a full fetch, with the delta sequence it is current up to. */
  set(resourceType: string, resourceId: number | string, data: T, sequence: number): DeltaResource<T> {
    const resource: DeltaResource<T> = { resourceType, resourceId, data: { ...data }, sequence };
    this.#store(resource);
    return resource;
  }

  /** The resource, or `undefined` when no delta or seed was seen for it. */
  get(resourceType: string, resourceId: number | string): DeltaResource<T> | undefined {
    return this.#resources.get(keyOf(resourceType, resourceId));
  }

  /** Every kept resource, or those of one type. */
  list(resourceType?: string): DeltaResource<T>[] {
    const all = [...this.#resources.values()];
    return resourceType === undefined ? all : all.filter((r) => r.resourceType === resourceType);
  }

  /** Forgets one resource; returns whether it was kept. */
  delete(resourceType: string, resourceId: number | string): boolean {
    return this.#resources.delete(keyOf(resourceType, resourceId));
  }

  /** Forgets every resource (e.g. after a connection-level `sequence_gap`, before refetching). */
  clear(): void {
    this.#resources.clear();
  }

  /** Calls `listener` with every resource that changes; returns a function that stops it. */
  subscribe(listener: (resource: DeltaResource<T>) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #store(resource: DeltaResource<T>): void {
    this.#resources.set(keyOf(resource.resourceType, resource.resourceId), resource);
    for (const listener of [...this.#listeners]) listener(resource);
  }
}
