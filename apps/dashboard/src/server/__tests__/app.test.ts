import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Disposer, RawTestClient, testRedisUrl } from '@atp/test-utils';
import { CloseCode, DeliveredDataMessageSchema } from '@atp/ws-protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { createDashboardServer, type DashboardServerOptions } from '../app.js';
import { ConfigError } from '../config.js';

const disposer = new Disposer();
afterEach(() => disposer.run());

async function start(env: Record<string, string> = {}, options: DashboardServerOptions = {}) {
  const dashboard = await createDashboardServer({
    port: 0,
    host: '127.0.0.1',
    env,
    runner: { speed: 500, seed: 7, suiteIntervalMs: [500, 1000] },
    ...options,
  });
  disposer.add(() => dashboard.close());
  return { dashboard, base: dashboard.url, wsUrl: `ws://127.0.0.1:${dashboard.port}/api/ws/updates` };
}

async function connect(wsUrl: string): Promise<RawTestClient> {
  const client = await RawTestClient.connect(wsUrl);
  disposer.add(() => client.close());
  return client;
}

const getJson = async (url: string, init?: RequestInit) => {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe('createDashboardServer', () => {
  it('answers /api/ws/info with its WebSocket URL and heartbeat', async () => {
    const { dashboard, base } = await start();
    expect(dashboard.url).toBe(`http://127.0.0.1:${dashboard.port}`);
    expect(await getJson(`${base}/api/ws/info`)).toEqual({
      status: 200,
      body: { url: `ws://127.0.0.1:${dashboard.port}/api/ws/updates`, ping_interval: 30, ping_timeout: 10 },
    });
  });

  it("streams the simulated runner's traffic to a subscriber, valid by the protocol's schemas", async () => {
    const { wsUrl } = await start();
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'suite:progress' });
    await client.request('subscribe', { topic: 'events:tool_call' });
    await client.request('subscribe', { topic: 'logs', filter: { level: ['warning', 'error', 'critical'] } });
    const received = await client.waitForData(30);
    expect(received.map((m) => m.sequence)).toEqual(received.map((_, i) => i + 1));
    for (const message of received) {
      expect(DeliveredDataMessageSchema.safeParse(message).error).toBeUndefined();
    }
    const types = new Set(received.map((m) => m.type));
    expect(types).toContain('suite_progress');
    expect(types).toContain('event');
    for (const message of received) {
      if (message.type === 'event') expect(message.payload.event_type).toBe('tool_call');
      if (message.type === 'log_entry')
        expect(['warning', 'error', 'critical']).toContain(message.payload.level);
      expect(['suite_progress', 'event', 'log_entry']).toContain(message.type);
    }
  });

  it('serves the executions the runner publishes at /api/executions and /api/executions/:id', async () => {
    const { base, wsUrl } = await start();
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:completed' });
    const [done] = await client.waitForData(1);
    const payload = done!.payload as { suite_execution_id: number; test_execution_id: number; score: number };

    const list = await getJson(`${base}/api/executions`);
    expect(list.status).toBe(200);
    const executions = list.body.executions as Array<{ id: number; type: string }>;
    expect(list.body.total).toBe(executions.length);
    expect(executions.map((e) => e.id)).toContain(payload.suite_execution_id);

    const suite = await getJson(`${base}/api/executions/${payload.suite_execution_id}`);
    expect(suite.status).toBe(200);
    expect(suite.body).toMatchObject({
      type: 'suite_execution',
      suite_execution_id: payload.suite_execution_id,
    });
    const tests = suite.body.tests as Array<{ id: number }>;
    expect(tests.map((t) => t.id)).toContain(payload.test_execution_id);

    const test = await getJson(`${base}/api/executions/${payload.test_execution_id}`);
    expect(test.body).toMatchObject({
      type: 'test_execution',
      test_execution_id: payload.test_execution_id,
      suite_execution_id: payload.suite_execution_id,
      score: payload.score,
      status: expect.stringMatching(/^(passed|failed)$/),
    });
    expect(test.body.sequence).toBeGreaterThan(0);

    expect((await getJson(`${base}/api/executions/999999999`)).status).toBe(404);
    expect((await getJson(`${base}/api/executions/abc`)).status).toBe(400);
  });

  it('serves a suite execution as a live resource: the record of /api/executions/:id at the position of the stream', async () => {
    const { dashboard, base, wsUrl } = await start();
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'test:completed' });
    const [done] = await client.waitForData(1);
    const suiteId = (done!.payload as { suite_execution_id: number }).suite_execution_id;
    const answer = await client.request('get_resource', {
      kind: 'suite_execution',
      resource_id: String(suiteId),
    });
    const snapshot = answer.payload as {
      data: { sequence: number; tests: unknown[] };
      version: number;
      offset: number;
    };
    expect(snapshot.data.tests.length).toBeGreaterThan(0);
    expect(snapshot.version).toBe(snapshot.data.sequence);
    expect(snapshot.offset).toBeGreaterThanOrEqual(done!.offset!);

    // Once the runner stops, the resource over HTTP is exactly the REST record.
    await dashboard.runner!.stop();
    const resource = await getJson(`${base}/api/ws/resources/suite_execution/${suiteId}`);
    const record = await getJson(`${base}/api/executions/${suiteId}`);
    expect(resource.status).toBe(200);
    expect(resource.body.data).toEqual(record.body);
    expect(resource.body.version).toBe(record.body.sequence);
    // A test execution is not a suite execution; an unknown id is not found.
    const testId = (record.body.tests as Array<{ id: number }>)[0]!.id;
    expect((await getJson(`${base}/api/ws/resources/suite_execution/${testId}`)).body.error).toBe(
      'resource_not_found',
    );
    expect((await getJson(`${base}/api/ws/resources/suite_execution/x1`)).status).toBe(404);
  });

  it('answers 404 on the admin and publish endpoints when their tokens are unset', async () => {
    const { base } = await start({ ATP_WS_ADMIN_TOKEN: '', ATP_DEMO: '0' });
    expect((await fetch(`${base}/api/ws/clients`)).status).toBe(404);
    expect((await fetch(`${base}/api/ws/metrics`, { headers: { authorization: 'Bearer x' } })).status).toBe(
      404,
    );
    const publish = await fetch(`${base}/api/ws/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
      body: '{}',
    });
    expect(publish.status).toBe(404);
  });

  it('answers 401 without the tokens and 200/202 with them when they are set', async () => {
    const env = { ATP_WS_ADMIN_TOKEN: 'admin-token', ATP_WS_PUBLISH_TOKEN: 'publish-token', ATP_DEMO: '0' };
    const { base, wsUrl } = await start(env);
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'logs' });

    expect((await fetch(`${base}/api/ws/clients`)).status).toBe(401);
    expect(
      (await fetch(`${base}/api/ws/metrics`, { headers: { authorization: 'Bearer nope' } })).status,
    ).toBe(401);
    const admin = { authorization: 'Bearer admin-token' };
    const clients = await getJson(`${base}/api/ws/clients`, { headers: admin });
    expect(clients).toMatchObject({
      status: 200,
      body: { total: 1, clients: [{ subscriptions: ['logs'] }] },
    });
    const metrics = await fetch(`${base}/api/ws/metrics`, { headers: admin });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^atp_ws_connections 1$/m);

    const message = {
      type: 'log_entry',
      payload: { level: 'info', message: 'from outside', timestamp: '2024-01-15T10:30:00Z' },
    };
    const post = (authorization: string) =>
      fetch(`${base}/api/ws/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify(message),
      });
    expect((await post('Bearer admin-token')).status).toBe(401);
    const accepted = await post('Bearer publish-token');
    expect(accepted.status).toBe(202);
    expect(await accepted.json()).toEqual({ accepted: 1 });
    const [received] = await client.waitForData(1);
    expect(received).toMatchObject({ ...message, sequence: 1 });
  });

  it('runs no simulated runner with ATP_DEMO=0', async () => {
    const { dashboard, base, wsUrl } = await start({ ATP_DEMO: '0' });
    expect(dashboard.runner).toBeUndefined();
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'suite:progress' });
    await client.request('subscribe', { topic: 'logs' });
    // A round trip through the hub, then nothing was delivered or recorded.
    expect((await client.request('ping', {})).type).toBe('pong');
    expect(client.data()).toEqual([]);
    expect(await getJson(`${base}/api/executions`)).toEqual({
      status: 200,
      body: { executions: [], total: 0 },
    });
  });

  it('runs on the Redis broker with ATP_WS_REDIS_URL: two processes behave as one', async () => {
    const prefix = `atp-dashboard-test:${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const env = {
      ATP_DEMO: '0',
      ATP_WS_REDIS_URL: testRedisUrl(),
      ATP_WS_REDIS_PREFIX: prefix,
      ATP_WS_PUBLISH_TOKEN: 'pub',
    };
    const one = await start(env);
    const two = await start(env);
    const client = await connect(two.wsUrl);
    await client.request('subscribe', { topic: 'logs' });
    const response = await fetch(`${one.base}/api/ws/publish`, {
      method: 'POST',
      headers: { authorization: 'Bearer pub', 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'log_entry',
        payload: { level: 'info', message: 'through redis', timestamp: '2024-01-15T10:30:00Z' },
      }),
    });
    expect(response.status).toBe(202);
    expect((await client.waitForData(1))[0]?.payload.message).toBe('through redis');
  });

  it('refuses an ATP_WS_REDIS_URL that is not a Redis URL', async () => {
    const attempt = createDashboardServer({
      port: 0,
      host: '127.0.0.1',
      env: { ATP_WS_REDIS_URL: 'http://x' },
    });
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toThrow(/ATP_WS_REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/);
  });

  it('serves the browser client, the built page at / and the plain page', async () => {
    const uiDir = mkdtempSync(join(tmpdir(), 'atp-dashboard-ui-'));
    disposer.add(() => rmSync(uiDir, { recursive: true, force: true }));
    mkdirSync(join(uiDir, 'assets'));
    writeFileSync(join(uiDir, 'index.html'), '<!doctype html><div id="root"></div>');
    writeFileSync(join(uiDir, 'assets', 'index-abc123.js'), 'console.log(1)');
    const { base } = await start({ ATP_DEMO: '0' }, { uiDir });

    const script = await fetch(`${base}/static/v2/js/websocket.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    expect(await script.text()).toContain('ATPWebSocket');

    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    const asset = await fetch(`${base}/assets/index-abc123.js`);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');

    const plain = await fetch(`${base}/plain.html`);
    expect(plain.status).toBe(200);
    const html = await plain.text();
    expect(html).toContain('<script src="/static/v2/js/websocket.js"></script>');
    expect(html).toContain('const ws = new ATPWebSocket();');
  });

  it('says how to build the page when the UI is not built', async () => {
    const { base } = await start({ ATP_DEMO: '0' }, { uiDir: join(tmpdir(), 'atp-dashboard-no-ui') });
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(503);
    expect(await page.text()).toContain('pnpm build');
    expect((await fetch(`${base}/plain.html`)).status).toBe(200);
  });

  it('closes WebSocket clients with 1001 and stops the runner on close()', async () => {
    const { dashboard, wsUrl } = await start();
    const client = await connect(wsUrl);
    await client.request('subscribe', { topic: 'suite:progress' });
    await client.waitForData(1);
    await dashboard.close();
    expect((await client.waitForClose()).code).toBe(CloseCode.GoingAway);
    expect(dashboard.runner?.activeSuites).toBe(0);
    expect(dashboard.server.listening).toBe(false);
  });
});
