// Live resources with providers that lag the stream or never answer (found by attacking the product).
import type { ATPWebSocketServer } from '@atp/ws-server';
import { describe, expect, it } from 'vitest';
import { openResource } from '../index.js';
import { disposer, newClient, startHub } from './helpers.js';
import { completed, runOptions, serveRuns } from '@atp/test-utils';

const POLL = { timeout: 8_000, interval: 20 };

/**
 * Resource kind `lagging`: the test_completed ids of suite 1, served by an async provider whose
 * store is `lag.n` messages behind the stream, with the position that state reflects (as the
 * server README asks of a provider whose state comes from elsewhere). Returns the truth.
 */
function serveLagging(hub: ATPWebSocketServer, lag: { n: number }): number[] {
  const history: Array<{ offset: number; completed: number[] }> = [];
  const truth: number[] = [];
  hub.resources.follow((messages, position) => {
    let offset = position.offset - messages.length;
    for (const message of messages) {
      offset += 1;
      if (message.type === 'test_completed') truth.push(message.payload.test_execution_id);
      history.push({ offset, completed: [...truth] });
    }
  });
  hub.resources.register('lagging', async (_id, { position }) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    const at = [...history].reverse().find((h) => h.offset <= position.offset - lag.n);
    return {
      data: { completed: at ? [...at.completed] : [], progress: {} },
      position: { epoch: position.epoch, offset: at?.offset ?? 0 },
    };
  });
  return truth;
}

describe('live resources with lagging and hung providers', () => {
  it('a snapshot older than the subscriptions (lagging provider) is fetched again, not taken as live', async () => {
    const { hub, url } = await startHub();
    const lag = { n: 5 };
    const truth = serveLagging(hub, lag);
    const ws = newClient(url);
    await ws.connect();
    for (let test = 0; test < 20; test++) await hub.publish(completed(1, test));
    const handle = openResource(ws, 'lagging', 1, runOptions(1));
    disposer.add(() => handle.close());
    await new Promise((resolve) => setTimeout(resolve, 100));
    lag.n = 0; // the provider's store catches up
    await hub.publish(completed(1, 100));
    await expect.poll(() => handle.status, POLL).toBe('live');
    await expect.poll(() => handle.data?.completed, POLL).toEqual(truth);
  });

  it('a provider that never answers does not keep other resources of the connection from loading', async () => {
    const { hub, url } = await startHub();
    const runs = serveRuns(hub);
    hub.resources.register('hangs', () => new Promise<undefined>(() => {}));
    const ws = newClient(url);
    await ws.connect();
    const hung = openResource(ws, 'hangs', 1, runOptions(1));
    const other = openResource(ws, 'run', 2, runOptions(2));
    disposer.add(() => {
      hung.close();
      other.close();
    });
    await hub.publish(completed(2, 1));
    await expect.poll(() => other.status, POLL).toBe('live');
    await expect.poll(() => other.data, POLL).toEqual(runs.get(2));
  });
});
