import { join } from 'node:path';
import { Disposer } from '@atp/test-utils';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SuiteExecutionRecord, SuiteExecutionSummary } from '../src/server/executions.js';
import {
  ARTIFACTS,
  checkPrerequisites,
  getJson,
  launchBrowser,
  openPage,
  read,
  spawnDashboard,
  startDashboard,
  waitForValue,
} from './harness.js';

const LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;

let browser: Browser;
const disposer = new Disposer();

beforeAll(async () => {
  checkPrerequisites();
  browser = await launchBrowser();
});
afterEach(() => disposer.run());
afterAll(() => browser?.close());

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

/** The `aria-valuenow` of every progress bar on the page, as one string that changes when any moves. */
const progressValues = (page: Page) =>
  page
    .locator('[role=progressbar]')
    .evaluateAll((bars) => bars.map((bar) => bar.getAttribute('aria-valuenow')).join(','));

const suiteProgress = (page: Page) =>
  page
    .locator('[data-testid=suite-detail] [aria-label="Suite progress"]')
    .getAttribute('aria-valuenow')
    .then(Number);

const attributeValues = (page: Page, selector: string, attribute: string) =>
  page
    .locator(selector)
    .evaluateAll(
      (elements, name) => [...new Set(elements.map((element) => element.getAttribute(name)))].sort(),
      attribute,
    );

describe('the dashboard page in headless Chromium', () => {
  it('shows the suites with live progress bars, pass/fail counts, tests and events', async () => {
    // Suites of 15 tests or more: the one selected is still running when its progress is watched,
    // also on a loaded machine (a 5-test suite could finish first: "100 to be greater than 100").
    const dashboard = await startDashboard(disposer, { testsPerSuite: [15, 20] });
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${dashboard.url}/`);

    await expect.poll(() => read.connection(page)).toBe('connected');
    expect(await page.getByTestId('connection').textContent()).toContain('Connected');
    const card = page.getByTestId('suite-card').first();
    await card.waitFor();
    expect(await card.textContent()).toMatch(/gpt-4|claude-3-opus|gemini/);
    expect(await card.textContent()).toMatch(/Running|Completed/);
    expect(await card.textContent()).toMatch(/\d+\/\d+ tests/);
    // The newest running suite is selected and pinned in the URL.
    await page.getByTestId('suite-detail').waitFor();
    expect(new URL(page.url()).searchParams.get('suite')).toMatch(/^\d+$/);

    await page.getByTestId('test-row').first().waitFor();
    const before = await progressValues(page);
    await expect.poll(() => progressValues(page), { timeout: 10_000 }).not.toBe(before);
    const suiteBefore = await suiteProgress(page);
    await expect.poll(() => suiteProgress(page), { timeout: 20_000 }).toBeGreaterThan(suiteBefore);

    // Finished tests show a score and a duration.
    const finished = page.locator(
      '[data-testid=test-row][data-status=passed], [data-testid=test-row][data-status=failed]',
    );
    await finished.first().waitFor();
    expect(await finished.first().textContent()).toMatch(/\d\.\d\d[\s\S]*\d+(\.\d)? (ms|s)/);
    await expect.poll(() => read.chipCount(page, 'events', 'all')).toBeGreaterThan(0);
    await shot(page, 'dashboard');
    expect(errors).toEqual([]);
  });

  it('filters the event stream by type and the log tail by level, and keeps the filters in the URL', async () => {
    const dashboard = await startDashboard(disposer, { seed: 3 });
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${dashboard.url}/`);
    await expect
      .poll(() => read.chipCount(page, 'events', 'tool_call'), { timeout: 15_000 })
      .toBeGreaterThan(0);
    await expect.poll(() => read.chipCount(page, 'logs', 'info')).toBeGreaterThan(0);
    expect(await attributeValues(page, '[data-testid=event-row]', 'data-type')).not.toEqual(['tool_call']);

    await page.click('[aria-labelledby="events-title"] [data-filter="tool_call"]');
    expect(await attributeValues(page, '[data-testid=event-row]', 'data-type')).toEqual(['tool_call']);
    expect(await page.locator('[data-testid=event-row]').count()).toBeGreaterThan(0);
    expect(new URL(page.url()).searchParams.get('events')).toBe('tool_call');
    // Still live: new tool calls keep arriving under the filter.
    const toolCalls = await read.chipCount(page, 'events', 'tool_call');
    await expect
      .poll(() => read.chipCount(page, 'events', 'tool_call'), { timeout: 15_000 })
      .toBeGreaterThan(toolCalls);
    expect(await attributeValues(page, '[data-testid=event-row]', 'data-type')).toEqual(['tool_call']);

    await page.click('[aria-labelledby="logs-title"] [data-filter="info"]');
    await page.click('[aria-labelledby="logs-title"] [data-filter="warning"]');
    const levels = await attributeValues(page, '[data-testid=log-row]', 'data-level');
    expect(levels.length).toBeGreaterThan(0);
    expect(levels.every((level) => level === 'info' || level === 'warning')).toBe(true);
    expect(new URL(page.url()).searchParams.get('levels')).toBe('info,warning');
    await shot(page, 'filters');

    // A reload keeps the filters (and the suite).
    await page.reload();
    await expect
      .poll(() => page.locator('[data-testid=event-row]').count(), { timeout: 10_000 })
      .toBeGreaterThan(0);
    expect(await attributeValues(page, '[data-testid=event-row]', 'data-type')).toEqual(['tool_call']);

    await page.click('[aria-labelledby="events-title"] [data-filter="all"]');
    await expect
      .poll(() => attributeValues(page, '[data-testid=event-row]', 'data-type'))
      .toEqual(expect.arrayContaining(['llm_request', 'llm_response', 'tool_call']));
    expect(new URL(page.url()).searchParams.get('events')).toBeNull();
    expect(errors).toEqual([]);
  });

  it('shows a run opened in its middle from its first event, as /api/executions/:id has it, after a reload and after selecting it again', async () => {
    const dashboard = await startDashboard(disposer, { seed: 5 });
    const base = dashboard.url;
    const running = await waitForValue(async () => {
      const { executions } = await getJson<{ executions: SuiteExecutionSummary[] }>(`${base}/api/executions`);
      return executions.find((e) => e.status === 'running' && e.completed_tests >= 2);
    }, 'a suite in the middle of its run');
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${base}/?suite=${running.id}`);
    // Everything that happened before the page opened is there…
    await expect
      .poll(() => read.chipCount(page, 'events', 'all'), { timeout: 15_000 })
      .toBeGreaterThanOrEqual(running.events);
    // …and once the runner stops, the page holds exactly what the server recorded for the run.
    await dashboard.runner!.stop();
    const record = await getJson<SuiteExecutionRecord>(`${base}/api/executions/${running.id}`);
    expect(record.events).toBeGreaterThan(running.events);
    await expectPageToMatch(page, record);
    await shot(page, 'mid-run-replay');

    await page.reload();
    await expectPageToMatch(page, record);

    // Another suite, then this one again: nothing lost, nothing twice.
    await page.locator(`[data-testid=suite-card]:not([data-suite-id="${running.id}"])`).first().click();
    await expect
      .poll(() => page.getByTestId('suite-detail').getAttribute('data-suite-id'))
      .not.toBe(String(running.id));
    await page.goBack();
    await expect
      .poll(() => page.getByTestId('suite-detail').getAttribute('data-suite-id'))
      .toBe(String(running.id));
    await expectPageToMatch(page, record);
    expect(errors).toEqual([]);
  });

  it('shows "reconnecting" while the server is down and live data again after it restarts on the same port', async () => {
    const first = await spawnDashboard(disposer);
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${first.url}/`);
    await expect.poll(() => read.connection(page)).toBe('connected');
    await expect.poll(() => read.chipCount(page, 'events', 'all'), { timeout: 15_000 }).toBeGreaterThan(0);

    await first.kill();
    await expect.poll(() => read.connection(page), { timeout: 5000 }).toBe('reconnecting');
    expect(await page.getByTestId('connection').textContent()).toContain('Reconnecting');
    await shot(page, 'reconnecting');

    const second = await spawnDashboard(disposer, first.port);
    await expect.poll(() => read.connection(page), { timeout: 20_000 }).toBe('connected');
    // The new process lost the old one's history: the page says so and rebuilds from its REST API.
    await page.getByTestId('recovery-notice').waitFor();
    expect(await page.getByTestId('recovery-notice').textContent()).toMatch(/refreshed from the server/);
    // The selected run is one the new server has (it started its own runs: the old one may be
    // gone), rebuilt from the new server's first event, then live.
    const selected = () => new URL(page.url()).searchParams.get('suite');
    await expect
      .poll(async () => {
        const { executions } = await getJson<{ executions: SuiteExecutionSummary[] }>(
          `${second.url}/api/executions`,
        );
        return executions.some((e) => String(e.id) === selected());
      })
      .toBe(true);
    const suiteId = selected();
    const record = await getJson<SuiteExecutionRecord>(`${second.url}/api/executions/${suiteId}`);
    await expect
      .poll(() => read.chipCount(page, 'events', 'all'), { timeout: 15_000 })
      .toBeGreaterThan(record.events);
    // The suite list is the new server's, not a mix with the old one's.
    await expect
      .poll(async () => {
        const { executions } = await getJson<{ executions: SuiteExecutionSummary[] }>(
          `${second.url}/api/executions`,
        );
        const shown = await attributeValues(page, '[data-testid=suite-card]', 'data-suite-id');
        return shown.every((id) => executions.some((e) => String(e.id) === id));
      })
      .toBe(true);
    await shot(page, 'reconnected');
    expect(errors).toEqual([]);
  }, 60_000); // two server processes and a browser, beside the other e2e file: more than the default 30 s

  it('moves on to a run the restarted server has when the selected one is gone with the old server', async () => {
    const first = await startDashboard(disposer);
    const { page, errors } = await openPage(browser, disposer);
    await page.goto(`${first.url}/`);
    await expect.poll(() => read.connection(page)).toBe('connected');
    await expect.poll(() => new URL(page.url()).searchParams.get('suite')).not.toBeNull();
    const gone = Number(new URL(page.url()).searchParams.get('suite'));
    await first.close();
    await expect.poll(() => read.connection(page), { timeout: 5000 }).toBe('reconnecting');
    // Its runs are numbered from 500: the run the page shows does not exist there.
    const second = await startDashboard(disposer, { firstId: 500 }, first.port);
    await expect.poll(() => read.connection(page), { timeout: 20_000 }).toBe('connected');
    await page.getByTestId('recovery-notice').waitFor();
    await expect
      .poll(() => Number(new URL(page.url()).searchParams.get('suite')))
      .toBeGreaterThanOrEqual(500);
    const shown = Number(new URL(page.url()).searchParams.get('suite'));
    expect(shown).not.toBe(gone);
    expect(second.store.get(shown)).toBeDefined();
    await expect.poll(() => page.getByText('is not on this server').count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('looks right in dark mode and on a phone (no horizontal scrolling)', async () => {
    const dashboard = await startDashboard(disposer, { seed: 9 });
    const dark = await openPage(browser, disposer, { colorScheme: 'dark' });
    await dark.page.goto(`${dashboard.url}/`);
    await expect
      .poll(() => read.chipCount(dark.page, 'events', 'all'), { timeout: 15_000 })
      .toBeGreaterThan(20);
    const background = await dark.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).toBe('rgb(14, 16, 20)');
    await shot(dark.page, 'dark');

    const phone = await openPage(browser, disposer, { width: 390, height: 844 });
    await phone.page.goto(`${dashboard.url}/`);
    await phone.page.getByTestId('test-row').first().waitFor();
    const overflow = await phone.page.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth,
    );
    expect(overflow).toBeLessThanOrEqual(0);
    // The tests table fits too (no sideways scrolling inside it).
    const tableOverflow = await phone.page
      .locator('.table-wrap')
      .evaluate((wrap) => wrap.scrollWidth - wrap.clientWidth);
    expect(tableOverflow).toBeLessThanOrEqual(0);
    await phone.page.screenshot({ path: join(ARTIFACTS, 'phone.png'), fullPage: true });
    expect([...dark.errors, ...phone.errors]).toEqual([]);
    // Two pages, each replaying a run from its start: 15 s here alone, twice that on two busy cores.
  }, 60_000);
});

describe('the plain page (only /static/v2/js/websocket.js and the example of docs/GUIDE.md)', () => {
  it('connects and renders the test progress it receives', async () => {
    const dashboard = await startDashboard(disposer, { seed: 4 });
    const { page, errors } = await openPage(browser, disposer);
    const logged: string[] = [];
    page.on('console', (message) => logged.push(message.text()));
    await page.goto(`${dashboard.url}/plain.html`);

    await expect.poll(() => page.locator('#status').getAttribute('data-state')).toBe('connected');
    await expect
      .poll(() => page.locator('#count').textContent().then(Number), { timeout: 15_000 })
      .toBeGreaterThan(5);
    expect(await page.locator('#tests progress').count()).toBeGreaterThan(0);
    expect(await page.evaluate(() => typeof (globalThis as { ATPWebSocket?: unknown }).ATPWebSocket)).toBe(
      'function',
    );
    // The example's handlers log exactly what docs/GUIDE.md says they print.
    expect(logged.some((line) => /^Test progress: \d+(\.\d+)?$/.test(line))).toBe(true);
    await shot(page, 'plain');
    expect(errors).toEqual([]);
  });
});

/** Waits until the page shows exactly the run `record` describes: every event, log line and test. */
async function expectPageToMatch(page: Page, record: SuiteExecutionRecord): Promise<void> {
  await expect.poll(() => read.chipCount(page, 'events', 'all'), { timeout: 15_000 }).toBe(record.events);
  // Each subscription replays in turn (tests, events, then logs): wait for each count.
  for (const level of LEVELS) {
    await expect.poll(() => read.chipCount(page, 'logs', level)).toBe(record.logs[level]);
  }
  await expect.poll(() => page.getByTestId('test-row').count()).toBe(record.tests.length);
  const rows = await page
    .getByTestId('test-row')
    .evaluateAll((elements) =>
      elements.map((row) => [row.getAttribute('data-test-id'), row.getAttribute('data-status')] as const),
    );
  expect(new Map(rows)).toEqual(new Map(record.tests.map((test) => [test.test_id, test.status])));
}
