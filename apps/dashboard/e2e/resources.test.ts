import { Disposer, RedisServer } from '@atp/test-utils';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DashboardServer } from '../src/server/app.js';
import type { Clock } from '../src/server/clock.js';
import type { SuiteExecutionRecord } from '../src/server/executions.js';
import {
  checkPrerequisites,
  getJson,
  launchBrowser,
  openPage,
  read,
  startDashboard,
  TcpProxy,
  waitForValue,
} from './harness.js';

// The selected suite is a live resource of the page (`useResource`). In every case below, once the
// runner stops, the run the page shows must be exactly what `GET /api/executions/:id` answers:
// the record the page holds (window.atpDashboard) and what it renders (tests, counts).

declare global {
  interface Window {
    /** Set by the page (src/ui/app.tsx): its selected suite, as `useResource` holds it. */
    atpDashboard?: { readonly suiteId: number | undefined; readonly status: string; readonly data: unknown };
  }
}

const LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;
const POLL = { timeout: 20_000, interval: 200 };

let browser: Browser;
const disposer = new Disposer();

beforeAll(async () => {
  checkPrerequisites();
  browser = await launchBrowser();
});
afterEach(() => disposer.run());
afterAll(() => browser?.close());

/** What the page holds of its selected suite (JSON, as the server would send it). */
async function pageHolds(
  page: Page,
): Promise<{ suiteId: number | undefined; status: string; data: unknown }> {
  return JSON.parse(
    await page.evaluate(() => JSON.stringify(window.atpDashboard ?? { suiteId: undefined, status: 'none' })),
  );
}

/** Waits until the page shows a suite live, and returns its id. */
async function liveSuite(page: Page): Promise<number> {
  return waitForValue(async () => {
    const held = await pageHolds(page);
    return held.status === 'live' && held.suiteId !== undefined ? held.suiteId : undefined;
  }, 'the page to show a suite live');
}

/**
 * Stops the runner, then waits until the page's suite equals the server's truth over HTTP, in
 * the record it holds and in what it renders. Returns the truth.
 */
async function expectPageToEqualServer(
  page: Page,
  dashboard: DashboardServer,
): Promise<SuiteExecutionRecord> {
  await dashboard.runner?.stop();
  const suiteId = await liveSuite(page);
  const truth = await getJson<SuiteExecutionRecord>(`${dashboard.url}/api/executions/${suiteId}`);
  await expect.poll(async () => (await pageHolds(page)).data, POLL).toEqual(truth);
  expect((await pageHolds(page)).status).toBe('live');
  // What it renders: every test with its status, the event total and the log lines by level.
  await expect.poll(() => page.getByTestId('test-row').count(), POLL).toBe(truth.tests.length);
  const rows = await page
    .getByTestId('test-row')
    .evaluateAll((elements) =>
      elements.map((row) => [row.getAttribute('data-test-id'), row.getAttribute('data-status')] as const),
    );
  expect(new Map(rows)).toEqual(new Map(truth.tests.map((test) => [test.test_id, test.status])));
  expect(await read.chipCount(page, 'events', 'all')).toBe(truth.events);
  for (const level of LEVELS) expect(await read.chipCount(page, 'logs', level)).toBe(truth.logs[level]);
  expect(await page.getByTestId('suite-detail').getAttribute('data-suite-id')).toBe(String(suiteId));
  return truth;
}

/** A Prometheus counter of the hub. */
async function metric(dashboard: DashboardServer, name: string): Promise<number> {
  const text = await dashboard.hub.metrics();
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/** The simulated clock of the runner, whose speed a test changes: 20 minutes of a run in a second. */
function warpClock(speed: number): Clock & { setSpeed(speed: number): void } {
  let baseTime = Date.now();
  let baseReal = performance.now();
  let current = speed;
  const now = () => baseTime + (performance.now() - baseReal) * current;
  return {
    now,
    setSpeed(next) {
      baseTime = now();
      baseReal = performance.now();
      current = next;
    },
    sleep: (ms, signal) =>
      new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, ms / current));
        signal?.addEventListener('abort', done, { once: true });
      }),
  };
}

describe('the selected suite, a live resource, equals GET /api/executions/:id at the end', () => {
  it('(a) after a server restart mid-run on the memory broker (history lost)', async () => {
    const first = await startDashboard(disposer, { seed: 21 });
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${first.url}/`);
    const before = await liveSuite(page);
    await expect
      .poll(async () => ((await pageHolds(page)).data as SuiteExecutionRecord).events, POLL)
      .toBeGreaterThan(0);
    await first.close();
    await expect.poll(() => read.connection(page), { timeout: 5000 }).toBe('reconnecting');
    // Another run on the same port: same ids, other runs.
    const second = await startDashboard(disposer, { seed: 22 }, first.port);
    await expect.poll(() => read.connection(page), POLL).toBe('connected');
    await page.getByTestId('recovery-notice').waitFor();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const truth = await expectPageToEqualServer(page, second);
    expect(truth.id === before || truth.id >= 100).toBe(true);
    expect(errors).toEqual([]);
  }, 60_000);

  it('(b) after a Redis restart (the Redis broker, on a redis-server of its own)', async () => {
    const redis = await RedisServer.start();
    disposer.add(() => redis.stop());
    // Long suites (20 tests each), so that the run shown is still going after the restart.
    const dashboard = await startDashboard(disposer, { seed: 23, testsPerSuite: [20, 20] }, 0, {
      env: { ATP_WS_REDIS_URL: redis.url, ATP_WS_REDIS_PREFIX: 'dash-res' },
    });
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${dashboard.url}/`);
    await liveSuite(page);
    await expect
      .poll(async () => ((await pageHolds(page)).data as SuiteExecutionRecord).events, POLL)
      .toBeGreaterThan(0);
    await redis.restart();
    // The stream starts over in Redis (a new epoch): the page refetches its suite and goes on.
    await page.getByTestId('recovery-notice').waitFor({ timeout: 20_000 });
    // The run goes on after the restart on the server's side; the page must follow it.
    const { suiteId, data } = await pageHolds(page);
    const held = (data as SuiteExecutionRecord).events;
    await expect
      .poll(
        async () =>
          (await getJson<SuiteExecutionRecord>(`${dashboard.url}/api/executions/${suiteId}`)).events,
        POLL,
      )
      .toBeGreaterThan(held);
    await expectPageToEqualServer(page, dashboard);
    expect(errors).toEqual([]);
  }, 60_000);

  it('(c) as a slow consumer closed with 1013, resumed (progress coalesced on the way is counted, not required)', async () => {
    const dashboard = await startDashboard(disposer, { seed: 24 }, 0, {
      hub: { softBufferedBytes: 16 * 1024, maxBufferedBytes: 256 * 1024 },
    });
    const proxy = await TcpProxy.start(disposer, dashboard.port);
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${proxy.url}/`);
    await liveSuite(page);
    // The page stops reading; the runner goes on, and a flood of messages it receives (deltas of a
    // resource nobody has, which change nothing) fills its buffer past the hard limit.
    proxy.pause();
    const filler = 'x'.repeat(8000);
    for (
      let round = 0;
      round < 120 && (await metric(dashboard, 'atp_ws_slow_consumer_closes_total')) === 0;
      round++
    ) {
      await dashboard.hub.publish(
        Array.from({ length: 50 }, (_, i) => ({
          type: 'delta_update' as const,
          payload: {
            resource_type: 'suite_execution',
            resource_id: 999_999,
            sequence: round * 50 + i + 1,
            changes: { filler },
          },
        })),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await metric(dashboard, 'atp_ws_slow_consumer_closes_total')).toBeGreaterThanOrEqual(1);
    const coalesced = await metric(dashboard, 'atp_ws_dropped_total');
    proxy.resume();
    await expect.poll(() => read.connection(page), POLL).toBe('connected');
    await expectPageToEqualServer(page, dashboard);
    expect(errors).toEqual([]);
    console.info(`slow consumer: closed with 1013, ${coalesced} progress messages coalesced`);
  }, 60_000);

  it('(d) when the page joins 20 minutes into a run (a simulated clock)', async () => {
    const clock = warpClock(3000);
    const dashboard = await startDashboard(disposer, {
      clock,
      seed: 25,
      initialSuites: 1,
      maxSuites: 1,
      testsPerSuite: [150, 150],
    });
    const startedAt = clock.now();
    await waitForValue(
      async () => (clock.now() - startedAt >= 20 * 60_000 ? true : undefined),
      '20 simulated minutes',
    );
    clock.setSpeed(25);
    const [suite] = dashboard.store.list();
    expect(suite?.status).toBe('running');
    expect(clock.now() - Date.parse(suite!.started_at!)).toBeGreaterThanOrEqual(20 * 60_000);
    expect(suite!.events).toBeGreaterThan(100);
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${dashboard.url}/?suite=${suite!.id}`);
    await liveSuite(page);
    const held = ((await pageHolds(page)).data as SuiteExecutionRecord).events;
    await expect
      .poll(async () => ((await pageHolds(page)).data as SuiteExecutionRecord).events, POLL)
      .toBeGreaterThan(held);
    const truth = await expectPageToEqualServer(page, dashboard);
    expect(truth.id).toBe(suite!.id);
    expect(errors).toEqual([]);
  }, 60_000);

  it('(e) after being offline longer than the history kept', async () => {
    const dashboard = await startDashboard(disposer, { seed: 26 }, 0, {
      memoryBroker: { maxMessages: 300, recentMessages: 0, recentWindowMs: 0 },
    });
    const proxy = await TcpProxy.start(disposer, dashboard.port);
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${proxy.url}/`);
    await liveSuite(page);
    proxy.cut();
    await expect.poll(() => read.connection(page), { timeout: 5000 }).not.toBe('connected');
    // More than the history holds is published while the page is away.
    const published = await metric(dashboard, 'atp_ws_published_total');
    await waitForValue(
      async () => ((await metric(dashboard, 'atp_ws_published_total')) > published + 600 ? true : undefined),
      'the history to move on past the page',
    );
    proxy.restore();
    await expect.poll(() => read.connection(page), POLL).toBe('connected');
    await page.getByTestId('recovery-notice').waitFor();
    expect(await page.getByTestId('recovery-notice').textContent()).toMatch(/no longer keeps/);
    await expectPageToEqualServer(page, dashboard);
    expect(errors).toEqual([]);
  }, 60_000);
});
