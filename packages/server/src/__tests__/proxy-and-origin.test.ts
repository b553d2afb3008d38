import type { AddressInfo } from 'node:net';
import { RawTestClient } from '@atp/test-utils';
import { describe, expect, it } from 'vitest';
import { type ATPWebSocketServerOptions, type ClientInfo, createATPWebSocketServer } from '../index.js';
import { disposer, startApp } from './express-helpers.js';

const ADMIN = 'admin-secret-token';

interface UpgradeOptions {
  forwardedFor?: string;
  origin?: string;
  /** Local address to connect from (127.0.0.x): another peer address. */
  from?: string;
}

/** A real upgrade with the given headers; resolves once `connected` arrived, rejects with `statusCode`. */
async function upgrade(
  wsUrl: string,
  clientId: string,
  options: UpgradeOptions = {},
): Promise<RawTestClient> {
  const headers: Record<string, string> = {};
  if (options.forwardedFor !== undefined) headers['X-Forwarded-For'] = options.forwardedFor;
  if (options.origin !== undefined) headers.Origin = options.origin;
  const client = await RawTestClient.connect(`${wsUrl}?client_id=${clientId}`, {
    headers,
    ...(options.from === undefined ? {} : { localAddress: options.from }),
  });
  disposer.add(() => client.close());
  return client;
}

async function listClients(base: string): Promise<Map<string, string | undefined>> {
  const response = await fetch(`${base}/api/ws/clients`, { headers: { authorization: `Bearer ${ADMIN}` } });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { clients: ClientInfo[] };
  return new Map(body.clients.map((client) => [client.client_id, client.ip]));
}

async function info(base: string, headers: Record<string, string> = {}): Promise<{ url: string }> {
  const response = await fetch(`${base}/api/ws/info`, { headers });
  expect(response.status).toBe(200);
  return (await response.json()) as { url: string };
}

const FORWARDED = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' };

describe('trustProxy: the per-IP limit and the client list', () => {
  it('by default, a spoofed X-Forwarded-For does not dodge the per-IP limit', async () => {
    const { base, wsUrl } = await startApp({ adminToken: ADMIN }, { maxConnectionsPerIp: 2 });
    await upgrade(wsUrl, 'a', { forwardedFor: '203.0.113.1' });
    await upgrade(wsUrl, 'b', { forwardedFor: '203.0.113.2' });
    await expect(upgrade(wsUrl, 'c', { forwardedFor: '203.0.113.3' })).rejects.toMatchObject({
      statusCode: 429,
    });
    // The list shows the peer, not what it claims to forward.
    expect(await listClients(base)).toEqual(
      new Map([
        ['a', '127.0.0.1'],
        ['b', '127.0.0.1'],
      ]),
    );
  });

  it('behind a trusted proxy, counts each forwarded client on its own and lists its address', async () => {
    const { base, wsUrl } = await startApp(
      { adminToken: ADMIN },
      { maxConnectionsPerIp: 1, trustProxy: 'loopback' },
    );
    await upgrade(wsUrl, 'a', { forwardedFor: '203.0.113.1' });
    await upgrade(wsUrl, 'b', { forwardedFor: '203.0.113.2' });
    await expect(upgrade(wsUrl, 'c', { forwardedFor: '203.0.113.1' })).rejects.toMatchObject({
      statusCode: 429,
    });
    // The proxy's own connections (no X-Forwarded-For) count for the proxy.
    await upgrade(wsUrl, 'd');
    expect(await listClients(base)).toEqual(
      new Map([
        ['a', '203.0.113.1'],
        ['b', '203.0.113.2'],
        ['d', '127.0.0.1'],
      ]),
    );
  });

  it('walks X-Forwarded-For only through trusted hops: a number of hops', async () => {
    const { base, wsUrl } = await startApp({ adminToken: ADMIN }, { trustProxy: 1 });
    // One proxy: the client's own claim (198.51.100.9) is not believed, the address the proxy saw is.
    await upgrade(wsUrl, 'a', { forwardedFor: '198.51.100.9, 203.0.113.5' });
    expect((await listClients(base)).get('a')).toBe('203.0.113.5');
  });

  it('walks X-Forwarded-For only through trusted hops: an address list and a predicate', async () => {
    const list = await startApp({ adminToken: ADMIN }, { trustProxy: ['127.0.0.2', '10.0.0.0/8'] });
    await upgrade(list.wsUrl, 'trusted', { forwardedFor: '198.51.100.9, 10.1.2.3', from: '127.0.0.2' });
    await upgrade(list.wsUrl, 'untrusted', { forwardedFor: '198.51.100.9', from: '127.0.0.3' });
    expect(await listClients(list.base)).toEqual(
      new Map([
        ['trusted', '198.51.100.9'],
        ['untrusted', '127.0.0.3'],
      ]),
    );

    const hops: Array<[string, number]> = [];
    const predicate = await startApp(
      { adminToken: ADMIN },
      {
        trustProxy: (address, hop) => {
          hops.push([address, hop]);
          return address === '127.0.0.1';
        },
      },
    );
    await upgrade(predicate.wsUrl, 'a', { forwardedFor: '198.51.100.9, 203.0.113.5' });
    expect((await listClients(predicate.base)).get('a')).toBe('203.0.113.5');
    expect(hops).toContainEqual(['127.0.0.1', 0]);
    expect(hops).toContainEqual(['203.0.113.5', 1]);
  });
});

describe('trustProxy: GET /api/ws/info', () => {
  it('ignores X-Forwarded-Proto and X-Forwarded-Host from an untrusted peer (the default)', async () => {
    const { base, server } = await startApp();
    const { port } = server.address() as AddressInfo;
    expect((await info(base, FORWARDED)).url).toBe(`ws://127.0.0.1:${port}/api/ws/updates`);
  });

  it('ignores them when the peer is not among the trusted addresses', async () => {
    const { base, server } = await startApp({}, { trustProxy: '10.0.0.0/8, 192.168.0.0/16' });
    const { port } = server.address() as AddressInfo;
    expect((await info(base, FORWARDED)).url).toBe(`ws://127.0.0.1:${port}/api/ws/updates`);
  });

  it('honours them from a trusted peer', async () => {
    const { base } = await startApp({}, { trustProxy: true });
    expect((await info(base, FORWARDED)).url).toBe('wss://evil.example/api/ws/updates');
  });
});

describe('allowMissingOrigin', () => {
  const allowedOrigins = ['https://dash.example'];

  it('accepts an upgrade without Origin under an allowlist by default (non-browser clients)', async () => {
    const { wsUrl } = await startApp({}, { allowedOrigins });
    expect((await upgrade(wsUrl, 'node-client')).messages[0]?.type).toBe('connected');
    await expect(upgrade(wsUrl, 'evil', { origin: 'https://evil.example' })).rejects.toMatchObject({
      statusCode: 403,
    });
    await upgrade(wsUrl, 'browser', { origin: 'https://dash.example' });
  });

  it('refuses an upgrade without Origin with 403 when false', async () => {
    const { wsUrl } = await startApp({}, { allowedOrigins, allowMissingOrigin: false });
    await expect(upgrade(wsUrl, 'node-client')).rejects.toMatchObject({ statusCode: 403 });
    await expect(upgrade(wsUrl, 'evil', { origin: 'https://evil.example' })).rejects.toMatchObject({
      statusCode: 403,
    });
    await upgrade(wsUrl, 'browser', { origin: 'https://dash.example' });
  });

  it('with a predicate: the predicate decides unless allowMissingOrigin is set', async () => {
    const seen: Array<string | undefined> = [];
    const strict = (origin: string | undefined) => {
      seen.push(origin);
      return origin === 'https://dash.example';
    };
    const asked = await startApp({}, { allowedOrigins: strict });
    await expect(upgrade(asked.wsUrl, 'a')).rejects.toMatchObject({ statusCode: 403 });
    expect(seen).toEqual([undefined]);

    const overridden = await startApp({}, { allowedOrigins: strict, allowMissingOrigin: true });
    await upgrade(overridden.wsUrl, 'b');
    expect(seen).toEqual([undefined]);
  });
});

describe('option checks', () => {
  const nonsense: Array<[string, ATPWebSocketServerOptions, RegExp]> = [
    ['a negative hop count', { trustProxy: -1 }, /trustProxy/],
    ['a fractional hop count', { trustProxy: 1.5 }, /trustProxy/],
    ['an address that is none', { trustProxy: 'not-an-address' }, /trustProxy.*not-an-address/],
    ['a bad range', { trustProxy: ['10.0.0.0/33'] }, /trustProxy.*10\.0\.0\.0\/33/],
    ['an object', { trustProxy: {} as unknown as boolean }, /trustProxy/],
    [
      'a string for allowMissingOrigin',
      { allowMissingOrigin: 'yes' as unknown as boolean },
      /allowMissingOrigin/,
    ],
    ['allowMissingOrigin: false without allowedOrigins', { allowMissingOrigin: false }, /allowMissingOrigin/],
  ];
  for (const [what, options, message] of nonsense) {
    it(`refuses ${what} with a TypeError`, () => {
      expect(() => createATPWebSocketServer({ port: 0, ...options })).toThrow(TypeError);
      expect(() => createATPWebSocketServer({ port: 0, ...options })).toThrow(message);
    });
  }
});
