import { connect as tcpConnect } from 'node:net';
import { CloseCode, type DataMessage } from '@atp/ws-protocol';
import { type ATPWebSocketServerOptions, createATPWebSocketServer } from '@atp/ws-server';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { disposer, figure, log, until } from './harness/common.js';

async function startHub(options: ATPWebSocketServerOptions = {}) {
  const hub = createATPWebSocketServer({ port: 0, ...options });
  disposer.add(() => hub.close());
  await hub.ready;
  const port = hub.address()?.port as number;
  return { hub, port, url: `ws://127.0.0.1:${port}/api/ws/updates` };
}

/** Tries an upgrade; resolves with 101 and the open socket, or with the HTTP status of the refusal. */
function upgrade(
  url: string,
  options: { headers?: Record<string, string>; localAddress?: string; origin?: string } = {},
): Promise<{ status: number; ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    disposer.add(() => ws.terminate());
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0, ws });
      response.resume();
      ws.terminate();
    });
    ws.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) reject(error);
    });
  });
}

/** Sends raw bytes to the port and resolves with the first line of the answer. */
function rawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    disposer.add(() => socket.destroy());
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
    });
    socket.on('error', (error) =>
      (error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error),
    );
    socket.on('close', () => resolve(answer.split('\r\n', 1)[0] ?? ''));
    socket.write(bytes);
  });
}

/** The server still does its job: a new client subscribes and gets a published message. */
async function stillServes(hub: { publish(m: DataMessage): Promise<void> }, url: string): Promise<void> {
  const ws = new WebSocket(url);
  disposer.add(() => ws.terminate());
  const messages: { type: string; payload: { message?: string } }[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise((resolve) => ws.once('open', resolve));
  ws.send(JSON.stringify({ type: 'subscribe', payload: { topic: 'logs' } }));
  await until(() => messages.some((m) => m.type === 'subscribed'), 'the subscription');
  await hub.publish(log(1, 'still alive'));
  await until(() => messages.some((m) => m.payload.message === 'still alive'), 'the message');
  ws.close();
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

describe('hostile input against a real server', () => {
  it('closes a connection sending invalid UTF-8 as text with 1007, and keeps serving', async () => {
    const { hub, url } = await startHub();
    const invalid = [
      [0xff],
      [0xc3, 0x28],
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xe2, 0x82],
      [0xf8, 0x88, 0x80, 0x80, 0x80],
    ];
    const codes = await Promise.all(
      invalid.map(async (bytes) => {
        const { ws } = await upgrade(url);
        const closed = new Promise<number>((resolve) => ws.once('close', resolve));
        ws.send(Buffer.from([...Buffer.from('{"type":"ping","x":"'), ...bytes, ...Buffer.from('"}')]), {
          binary: false,
        });
        return closed;
      }),
    );
    figure('hostile-utf8', { frames: invalid.length, close_codes: [...new Set(codes)].join('/') });
    expect(codes).toEqual(invalid.map(() => 1007));
    await stillServes(hub, url);
  });

  it('closes a frame over maxPayload with 1009', async () => {
    const { hub, url } = await startHub({ maxPayload: 64 * 1024 });
    const { ws } = await upgrade(url);
    const closed = new Promise<number>((resolve) => ws.once('close', resolve));
    ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(70 * 1024) }));
    expect(await closed).toBe(CloseCode.MessageTooBig);
    await stillServes(hub, url);
  });

  it('refuses 10,000 subscribe messages past the rate limit and closes with 1008, never holding more than the limits', async () => {
    const { hub, url } = await startHub();
    const { ws } = await upgrade(url);
    const replies: { type: string; id?: number; payload: { code?: string } }[] = [];
    ws.on('message', (data) => replies.push(JSON.parse(String(data))));
    const closed = new Promise<number>((resolve) => ws.once('close', resolve));
    for (let i = 0; i < 10_000; i++) {
      ws.send(
        JSON.stringify({
          type: 'subscribe',
          id: i,
          payload: { topic: 'logs', filter: { suite_execution_id: i } },
        }),
      );
    }
    const code = await closed;
    const subscribed = replies.filter((r) => r.type === 'subscribed').length;
    const rateLimited = replies.filter((r) => r.payload.code === 'rate_limited').length;
    figure('hostile-subscribe-flood', {
      sent: 10_000,
      subscribed,
      rate_limited_errors: rateLimited,
      close_code: code,
    });
    expect(code).toBe(CloseCode.PolicyViolation);
    expect(subscribed).toBeLessThanOrEqual(100);
    // One error per run of refusals (a token refilled mid-flood starts a new run): not one per frame.
    const runs = replies.filter((r) => r.payload.code === 'rate_limited' && r.id === undefined).length;
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(runs).toBeLessThan(10);
    // Past the requests a connection may have waiting, each one is refused with its id: at most the burst.
    expect(rateLimited - runs).toBeLessThanOrEqual(100);
    await until(async () => (await hub.clients()).length === 0, 'the flooder to be forgotten');
    await stillServes(hub, url);
  });

  it('holds at most maxSubscriptions for 10,000 distinct subscribes within the rate limit', async () => {
    const { hub, url } = await startHub({
      rateLimit: { messagesPerSecond: 1e6, burst: 1e6 },
      maxQueuedRequests: 1e6,
    });
    const { ws } = await upgrade(url);
    const replies: { type: string; id?: number; payload: { code?: string } }[] = [];
    ws.on('message', (data) => replies.push(JSON.parse(String(data))));
    for (let i = 0; i < 10_000; i++) {
      ws.send(
        JSON.stringify({
          type: 'subscribe',
          id: i,
          payload: { topic: 'logs', filter: { suite_execution_id: i } },
        }),
      );
    }
    await until(() => replies.some((r) => r.id === 9999), 'the reply to the last subscribe');
    const subscribed = replies.filter((r) => r.type === 'subscribed').length;
    const refused = replies.filter((r) => r.payload.code === 'too_many_subscriptions').length;
    figure('hostile-subscriptions', { sent: 10_000, subscribed, too_many_subscriptions: refused });
    expect(subscribed).toBe(100);
    expect(refused).toBe(9_900);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    await stillServes(hub, url);
  });

  it('refuses a connection flood from one address past maxConnectionsPerIp with 429, and the total past maxConnections with 503', async () => {
    const { hub, url } = await startHub({ maxConnectionsPerIp: 50, maxConnections: 120 });
    const flood = await Promise.all(
      Array.from({ length: 200 }, () => upgrade(url, { localAddress: '127.0.0.20' })),
    );
    const statuses = flood.map((r) => r.status);
    expect(count(statuses, 101)).toBe(50);
    expect(count(statuses, 429)).toBe(150);
    // Other addresses are not punished for it, up to the total limit.
    const others = await Promise.all(
      Array.from({ length: 100 }, (_, i) => upgrade(url, { localAddress: `127.0.0.${21 + (i % 4)}` })),
    );
    const otherStatuses = others.map((r) => r.status);
    expect(count(otherStatuses, 101)).toBe(70);
    expect(count(otherStatuses, 503)).toBe(30);
    figure('hostile-connection-flood', {
      from_one_ip: 200,
      accepted: count(statuses, 101),
      refused_429: count(statuses, 429),
      others_accepted: count(otherStatuses, 101),
      refused_503: count(otherStatuses, 503),
    });
    // Slots are given back: once the flood is gone, the same address gets its 50 again.
    for (const { ws } of [...flood, ...others]) ws.close();
    await until(async () => (await hub.clients()).length === 0, 'every connection to close');
    const again = await Promise.all(
      Array.from({ length: 60 }, () => upgrade(url, { localAddress: '127.0.0.20' })),
    );
    expect(
      count(
        again.map((r) => r.status),
        101,
      ),
    ).toBe(50);
    for (const { ws } of again) ws.close();
  });

  it('refuses bad origins (403), bad tokens (401), bad client_ids (400) and oversized headers (431), and keeps serving', async () => {
    const { hub, url, port } = await startHub({
      allowedOrigins: ['https://atp.example.com'],
      authenticate: (_request, token) => {
        if (token === 'throw') throw new Error('hook failed');
        if (token === 'reject') return Promise.reject(new Error('hook rejected'));
        return token === 'good-token' ? { id: 'alice' } : null;
      },
    });
    const good = { origin: 'https://atp.example.com' };
    const withToken = (token: string, query = '') => `${url}?token=${encodeURIComponent(token)}${query}`;

    const origins = await Promise.all(
      [
        'https://evil.example.com',
        'https://atp.example.com.evil.com',
        'null',
        'HTTPS://ATP.EXAMPLE.COM',
        '',
      ].map((origin) => upgrade(withToken('good-token'), origin ? { origin } : {})),
    );
    const tokens = await Promise.all([
      upgrade(url, good),
      upgrade(withToken(''), good),
      upgrade(withToken('wrong'), good),
      upgrade(withToken('x'.repeat(8000)), good),
      upgrade(withToken('gööd-tökén\u0000'), good),
      upgrade(url, { ...good, headers: { Authorization: 'Bearer wrong' } }),
      upgrade(url, { ...good, headers: { Authorization: 'Basic Z29vZC10b2tlbg==' } }),
    ]);
    const hookFailures = await Promise.all([
      upgrade(withToken('throw'), good),
      upgrade(withToken('reject'), good),
    ]);
    const clientIds = await Promise.all(
      ['', 'a'.repeat(65), 'a b', '../etc/passwd', '%00', 'ü', 'a;b', '<script>', 'a%2Fb'].map((id) =>
        upgrade(withToken('good-token', `&client_id=${id}`), good),
      ),
    );
    const bigHeader = await rawRequest(
      port,
      `GET /api/ws/updates HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Padding: ${'a'.repeat(20 * 1024)}\r\n\r\n`,
    );
    const bigUrl = await rawRequest(
      port,
      `GET /api/ws/updates?${'q'.repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    const garbage = await rawRequest(port, '\u0000\u0001GARBAGE\r\n\r\n');
    const accepted = await upgrade(withToken('good-token', '&client_id=alice-tab-1'), good);

    figure('hostile-upgrades', {
      bad_origins: origins.map((r) => r.status).join('/'),
      bad_tokens: tokens.map((r) => r.status).join('/'),
      failing_hooks: hookFailures.map((r) => r.status).join('/'),
      bad_client_ids: clientIds.map((r) => r.status).join('/'),
      oversized_header: bigHeader,
      oversized_url: bigUrl,
      garbage,
    });
    // The last one sends no Origin at all: not a browser, accepted unless allowMissingOrigin is false.
    expect(origins.map((r) => r.status)).toEqual([403, 403, 403, 403, 101]);
    expect(tokens.map((r) => r.status)).toEqual([401, 401, 401, 401, 401, 401, 401]);
    expect(hookFailures.map((r) => r.status)).toEqual([500, 500]);
    expect(clientIds.map((r) => r.status)).toEqual(clientIds.map(() => 400));
    expect(bigHeader).toMatch(/^HTTP\/1\.1 431/);
    expect(bigUrl).toMatch(/^HTTP\/1\.1 431/);
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    expect(accepted.status).toBe(101);
    accepted.ws.close();
    for (const { status, ws } of origins) if (status === 101) ws.close();
    expect(await hub.metrics()).toMatch(/atp_ws_upgrades_refused_total\{status="401"\} 7\b/);
    await until(async () => (await hub.clients()).length === 0, 'no connection left behind');
    // Nothing above left an unhandled rejection behind (checked after every test) and the hub still works.
    const open = await startHub();
    await stillServes(open.hub, open.url);
  });
});

describe('connection slots under broken handshakes', () => {
  const handshake = (key: string) =>
    `GET /api/ws/updates HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;

  it('gives back the slot of an upgrade that ws itself refuses (invalid Sec-WebSocket-Key)', async () => {
    const { url, port } = await startHub({ maxConnectionsPerIp: 5, maxConnections: 5 });
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await rawRequest(port, handshake('not-a-valid-key')));
    const after = await upgrade(url);
    figure('hostile-broken-handshakes', {
      refused_by_ws: answers.filter((a) => /^HTTP\/1\.1 400/.test(a)).length,
      next_upgrade: after.status,
    });
    expect(answers.every((a) => /^HTTP\/1\.1 400/.test(a))).toBe(true);
    expect(after.status).toBe(101);
  });

  it('gives back the slot of a client that half-closes while its upgrade is being authenticated', async () => {
    const { url, port } = await startHub({
      maxConnectionsPerIp: 5,
      maxConnections: 5,
      authenticate: async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return { id: 'anyone' };
      },
    });
    for (let i = 0; i < 10; i++) {
      await new Promise<void>((resolve) => {
        const socket = tcpConnect(port, '127.0.0.1', () => {
          socket.end(handshake('dGhlIHNhbXBsZSBub25jZQ=='));
        });
        socket.resume();
        socket.on('error', () => {});
        socket.on('close', () => resolve());
      });
    }
    const after = await upgrade(url);
    expect(after.status).toBe(101);
  });
});
