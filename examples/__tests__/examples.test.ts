import { ATPWebSocket } from '@atp/ws-client';
import type { DataMessage } from '@atp/ws-protocol';
import { RedisBroker } from '@atp/ws-redis';
import { createATPWebSocketServer } from '@atp/ws-server';
import { chromiumExecutable, Disposer, testRedisUrl } from '@atp/test-utils';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { runToEnd, startServer } from './run.js';

const token = 'example-publish-token';
const disposer = new Disposer();
let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: chromiumExecutable(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
});
afterAll(() => browser?.close());
afterEach(() => disposer.run());

/**
 * Runs examples/publisher/rest.mjs every 300 ms (10 s at most) until `seen` resolves: a page's
 * subscriptions reach the hub shortly after it shows it is connected, and a message published before
 * that is, as it should be, not delivered to it.
 */
async function publishUntil(url: string, seen: Promise<unknown>): Promise<void> {
  let done = false;
  const watched = seen.then(() => {
    done = true;
  });
  for (let attempt = 0; !done && attempt < 33; attempt++) {
    const published = await runToEnd('publisher/rest.mjs', { ATP_URL: url, ATP_WS_PUBLISH_TOKEN: token });
    expect(published.stderr).toBe('');
    expect(published.code).toBe(0);
    expect(published.stdout).toBe('Published: { accepted: 1 }\n');
    await Promise.race([watched, new Promise((resolve) => setTimeout(resolve, 300))]);
  }
  await watched;
}

async function openPage(url: string) {
  const context = await browser.newContext();
  disposer.add(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(url);
  return { page, errors };
}

describe('examples/minimal: Express, the hub and one React hook', () => {
  it('shows the progress that examples/publisher/rest.mjs publishes, and stops on SIGTERM with status 0', async () => {
    const server = await startServer('minimal/server.mjs', { ATP_WS_PUBLISH_TOKEN: token });
    let stopped = false;
    disposer.add(() => (stopped ? undefined : server.stop()));
    const { page, errors } = await openPage(server.url);
    await page.getByText('Connected: Yes').waitFor({ timeout: 10_000 });
    await page.getByText('Progress: 0%').waitFor();

    await publishUntil(server.url, page.getByText('Progress: 50%').waitFor({ timeout: 10_000 }));
    expect(errors).toEqual([]);

    stopped = true;
    const end = await server.stop();
    expect(end.code).toBe(0);
    expect(end.stderr).toBe('');
  });
});

describe('examples/publisher', () => {
  it('rest.mjs fails with the status when the token is wrong', async () => {
    const server = await startServer('minimal/server.mjs', { ATP_WS_PUBLISH_TOKEN: token });
    disposer.add(() => server.stop());
    const result = await runToEnd('publisher/rest.mjs', {
      ATP_URL: server.url,
      ATP_WS_PUBLISH_TOKEN: 'wrong',
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('publish failed: 401');
  });

  it('redis.mjs publishes into a hub sharing its Redis, then exits by itself', async () => {
    const url = testRedisUrl();
    const broker = new RedisBroker({ url });
    const hub = createATPWebSocketServer({ port: 0, broker });
    disposer.add(() => hub.close());
    disposer.add(() => broker.close());
    await hub.ready;
    const port = hub.address()?.port;
    const received: DataMessage['type'][] = [];
    const client = new ATPWebSocket({ url: `ws://127.0.0.1:${port}/api/ws/updates`, WebSocket });
    disposer.add(() => client.disconnect());
    client.on('log_entry', () => received.push('log_entry'));
    client.on('suite_progress', () => received.push('suite_progress'));
    const confirmed = new Promise<void>((resolve) => {
      let count = 0;
      client.on('subscribed', () => {
        count += 1;
        if (count === 2) resolve();
      });
    });
    client.subscribe('logs');
    client.subscribe('suite:progress', { suite_execution_id: 123 });
    await client.connect();
    await confirmed;

    const result = await runToEnd('publisher/redis.mjs', { ATP_WS_REDIS_URL: url });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Published 2 messages\n');
    await expect.poll(() => received, { timeout: 10_000 }).toEqual(['log_entry', 'suite_progress']);
  });
});

describe('examples/script-page: the plain <script> page', () => {
  it('loads the IIFE the server serves and renders what is published', async () => {
    const server = await startServer('script-page/server.mjs', { ATP_WS_PUBLISH_TOKEN: token });
    disposer.add(() => server.stop());
    const { page, errors } = await openPage(server.url);
    await publishUntil(server.url, page.getByText('Progress: 50%').waitFor({ timeout: 10_000 }));
    const completed = await fetch(`${server.url}/api/ws/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'suite_completed',
        payload: {
          suite_execution_id: 123,
          suite_name: 'Auth Tests',
          agent_name: 'gpt-4',
          success_rate: 0.9,
          total_tests: 10,
          passed_tests: 9,
          failed_tests: 1,
          duration_seconds: 125.5,
        },
      }),
    });
    expect(completed.status).toBe(202);
    await page.getByText('Suite completed: 90%').waitFor({ timeout: 10_000 });
    expect(errors).toEqual([]);
  });
});
