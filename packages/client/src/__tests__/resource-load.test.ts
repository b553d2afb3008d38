// Many live resources on one connection, opened faster than the server's rate limit allows and
// across new sessions (found by attacking the resource handle): each must load, and closing them
// must leave nothing behind on the client.
import { completed, runOptions, serveRuns } from '@atp/test-utils';
import { describe, expect, it } from 'vitest';
import { type ATPWebSocket, openResource, type ResourceHandle } from '../index.js';
import type { Run } from '@atp/test-utils';
import { disposer, newClient, startHub } from './helpers.js';

/** Counts the listeners registered on `ws` through `on` and not yet removed. */
function countListeners(ws: ATPWebSocket): { readonly active: number } {
  const counter = { active: 0 };
  const on = ws.on.bind(ws);
  ws.on = ((event, handler) => {
    const stop = on(event, handler);
    counter.active += 1;
    let stopped = false;
    return () => {
      if (!stopped) counter.active -= 1;
      stopped = true;
      stop();
    };
  }) as ATPWebSocket['on'];
  return counter;
}

describe('live resources under load', () => {
  it('200 handles over 7 resources, opened in a burst across new sessions: all live, none left behind', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    const ws = newClient(url);
    const listeners = countListeners(ws);
    await ws.connect();
    const baseline = listeners.active;
    for (let suite = 0; suite < 7; suite++) await hub.publish(completed(suite, 1));
    const handles: ResourceHandle<Run>[] = [];
    for (let n = 0; n < 200; n++) {
      const suite = n % 7;
      handles.push(openResource(ws, 'run', suite, runOptions(suite)));
      if (n % 50 === 49) {
        ws.disconnect();
        void ws.connect();
      }
    }
    disposer.add(() => {
      for (const handle of handles) handle.close();
    });
    for (let suite = 0; suite < 7; suite++) await hub.publish(completed(suite, 2));
    await expect
      .poll(() => handles.filter((handle) => handle.status !== 'live').length, {
        timeout: 20_000,
        interval: 50,
      })
      .toBe(0);
    for (const handle of handles) expect(handle.data).toEqual(runs.get(Number(handle.id)));
    for (const handle of handles) handle.close();
    expect(listeners.active).toBe(baseline);
  }, 30_000);

  it('closing handles whose snapshot is still on the way removes their listeners at once', async () => {
    const { hub, url } = await startHub();
    hub.resources.register('hangs', () => new Promise<undefined>(() => {}));
    const ws = newClient(url);
    const listeners = countListeners(ws);
    await ws.connect();
    const baseline = listeners.active;
    const handles = Array.from({ length: 5 }, (_, suite) =>
      openResource(ws, 'hangs', suite, runOptions(suite)),
    );
    await expect.poll(() => listeners.active - baseline).toBeGreaterThan(5 * 4);
    for (const handle of handles) handle.close();
    expect(listeners.active).toBe(baseline);
  });
});
