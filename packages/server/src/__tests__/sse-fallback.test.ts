import { fallbackStreamUrl, RawSseTestClient } from '@atp/test-utils';
import { CloseCode, ErrorCode } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import type { ATPWebSocketServerOptions } from '../index.js';
import { connect, disposer, log, startFallbackHub as startHubWithFallback } from './helpers.js';

/** A hub with the fallback router (POST bodies up to `maxBodyBytes`: 4 KiB unless given). */
function startFallbackHub(options: ATPWebSocketServerOptions = {}, maxBodyBytes = 4096) {
  return startHubWithFallback(options, maxBodyBytes);
}

async function sse(url: string, query = '') {
  const client = await RawSseTestClient.connect(query ? `${url}?${query}` : url);
  disposer.add(() => client.close());
  return client;
}

describe('SSE fallback endpoints', () => {
  it('answers 404 unknown_session for a session that never existed, and for one whose stream ended', async () => {
    const { url, base } = await startFallbackHub();
    const never = await fetch(`${base}/api/ws-sse/sessions/AAAAAAAAAAAAAAAAAAAAAA`, {
      method: 'POST',
      body: '{}',
    });
    expect(never.status).toBe(404);
    expect(await never.json()).toMatchObject({ error: 'unknown_session' });
    const client = await sse(url);
    const session = client.session;
    await client.close();
    await expect
      .poll(
        async () =>
          (await fetch(`${base}/api/ws-sse/sessions/${session}`, { method: 'POST', body: '{"type":"ping"}' }))
            .status,
      )
      .toBe(404);
  });

  it('refuses a body over maxBodyBytes with 413 and keeps the session and other clients served', async () => {
    const { url, hub } = await startFallbackHub({}, 4096);
    const client = await sse(url);
    const other = await connect(url);
    await other.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    const answer = await client.postRaw('x'.repeat(10_000));
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'body_too_large' });
    expect((await client.request('ping')).type).toBe('pong');
    await hub.publish(log(1, 'info', 'still served'));
    expect((await other.waitForData(1))[0]?.payload.message).toBe('still served');
  });

  it('closes with 1009 and answers 413 for a message over maxPayload, as a WebSocket would', async () => {
    const { url } = await startFallbackHub({ maxPayload: 1024 }, 1024 * 1024);
    const client = await sse(url);
    const answer = await client.postRaw(JSON.stringify({ type: 'ping', id: 'x'.repeat(2000) }));
    expect(answer.status).toBe(413);
    expect((await client.waitForClose()).code).toBe(CloseCode.MessageTooBig);
    const next = await sse(url);
    expect((await next.request('ping')).type).toBe('pong');
  });

  it('answers malformed JSON lines with protocol errors on the stream and goes on with the next line', async () => {
    const { url } = await startFallbackHub();
    const client = await sse(url);
    const answer = await client.postRaw('{"type":\n{"type":"ping","id":"after"}');
    expect(answer.status).toBe(202);
    expect(JSON.parse(answer.body)).toEqual({ received: 2 });
    const error = await client.waitFor((m) => m.type === 'error');
    expect(error.payload.code).toBe(ErrorCode.InvalidJson);
    expect((await client.waitFor((m) => m.id === 'after')).type).toBe('pong');
  });

  it('cuts a peer that stops answering heartbeat pings', async () => {
    const { url, hub } = await startFallbackHub({ pingInterval: 100, pingTimeout: 100 });
    const client = await sse(url);
    client.answerPings = false;
    expect((await client.waitForClose()).code).toBe(1006);
    await expect.poll(async () => (await hub.clients()).length).toBe(0);
  });

  it('lists a fallback client with transport sse', async () => {
    const { url, hub } = await startFallbackHub();
    await sse(url, 'client_id=over-sse');
    const ws = await connect(url, 'client_id=over-ws');
    expect(ws.isOpen).toBe(true);
    const clients = await hub.clients();
    expect(Object.fromEntries(clients.map((c) => [c.client_id, c.transport]))).toEqual({
      'over-sse': 'sse',
      'over-ws': 'websocket',
    });
  });

  it('answers HEAD on the stream path with 405 and opens no connection', async () => {
    const { url, hub } = await startFallbackHub();
    const response = await fetch(fallbackStreamUrl(url), { method: 'HEAD' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET');
    expect(await hub.clients()).toEqual([]);
  });

  it('counts open connections by transport in the metrics', async () => {
    const { url, hub } = await startFallbackHub();
    await sse(url, 'client_id=a');
    await sse(url, 'client_id=b');
    const ws = await connect(url, 'client_id=c');
    expect(ws.isOpen).toBe(true);
    const text = await hub.metrics();
    expect(text).toMatch(/^atp_ws_transport_connections\{transport="sse"\} 2$/m);
    expect(text).toMatch(/^atp_ws_transport_connections\{transport="websocket"\} 1$/m);
    expect(text).toMatch(/^atp_ws_connections 3$/m);
  });
});
