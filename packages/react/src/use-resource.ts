import {
  type ATPWebSocket,
  openResource,
  type ResourceHandle,
  type ResourceOptions,
  type ResourceView,
} from '@atp/ws-client';
import { canonicalSubscriptionKey, type Filter } from '@atp/ws-protocol';
import { useMemo, useRef, useSyncExternalStore } from 'react';
import { useATPWebSocketClient } from './provider.js';

/** Options of {@link useResource}: those of `openResource`, plus `enabled`. */
export interface UseResourceOptions<T> extends ResourceOptions<T> {
  /** `false` opens nothing (status stays `loading`, no subscription, no fetch). @default true */
  enabled?: boolean;
}

const LOADING: ResourceView<never> = { data: undefined, status: 'loading', error: undefined };

interface ResourceStore<T> {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): ResourceView<T>;
}

/**
 * One live resource held by the client while a component shows it: opened
 * when the first component subscribes, closed when the last one goes. The
 * handle owns the subscriptions, fetches and resyncs; the hook only reads.
 */
function createStore<T>(
  client: ATPWebSocket,
  kind: string,
  id: string | number,
  latest: { current: UseResourceOptions<T> },
  enabled: boolean,
): ResourceStore<T> {
  let handle: ResourceHandle<T> | undefined;
  let users = 0;
  return {
    subscribe(onChange) {
      if (!enabled) return () => {};
      if (!handle) {
        const { enabled: _enabled, ...options } = latest.current;
        handle = openResource<T>(client, kind, id, {
          ...options,
          // The newest reducer and matcher of the component, without reopening the resource.
          reduce: (data, message, meta) => latest.current.reduce(data, message, meta),
          ...(options.matches ? { matches: (message) => latest.current.matches?.(message) ?? false } : {}),
        });
      }
      users += 1;
      const current = handle;
      const stop = current.on('change', onChange);
      return () => {
        stop();
        users -= 1;
        if (users === 0 && handle === current) {
          current.close();
          handle = undefined;
        }
      };
    },
    getSnapshot: () => (handle?.view ?? LOADING) as ResourceView<T>,
  };
}

function subscriptionsKey(subscriptions: ResourceOptions<unknown>['subscriptions']): string {
  return subscriptions
    .map(({ topic, filter }) => canonicalSubscriptionKey(topic, (filter ?? {}) as Filter))
    .join('\n');
}

/**
 * A live resource of the server (`hub.resources`) as `{ data, status, error }`:
 * its snapshot, then every matching live message after it reduced in order by
 * `options.reduce`, refetched (this resource only) after a gap, an epoch
 * change or a delta version gap. Built on `openResource` from
 * `@atp/ws-client` and `useSyncExternalStore`; the hook has no timer, socket
 * or fetch of its own. Changing `kind`, `id`, the subscriptions or `enabled`,
 * or giving `matches` where it was left out (or the reverse), opens another
 * resource; a new `reduce` or `matches` function is used at once.
 *
 * @example
 * const { data, status, error } = useResource('suite_execution', 123, {
 *   subscriptions: [{ topic: 'suite:progress', filter: { suite_execution_id: 123 } }],
 *   reduce: (suite, message) =>
 *     message.type === 'suite_progress' ? { ...suite, ...message.payload } : suite,
 * });
 * if (status === 'error') return <p>{error?.message}</p>;
 * return <p>{status === 'loading' ? 'Loading…' : `${data?.progress_percent} %`}</p>;
 */
export function useResource<T>(
  kind: string,
  id: string | number,
  options: UseResourceOptions<T>,
): ResourceView<T> {
  const client = useATPWebSocketClient();
  const latest = useRef(options);
  latest.current = options;
  const enabled = options.enabled ?? true;
  // Whether `matches` is given is part of the key: without it the handle's own matching applies,
  // which cannot be swapped in later (a new `matches` function, given each render, is used at once).
  const custom = options.matches ? 'matches' : 'default';
  const key = `${kind}\u0000${String(id)}\u0000${custom}\u0000${subscriptionsKey(options.subscriptions)}`;
  // biome-ignore lint/correctness/useExhaustiveDependencies: the key stands for kind, id and the subscriptions.
  const store = useMemo(() => createStore<T>(client, kind, id, latest, enabled), [client, key, enabled]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}
