import { request as httpRequest } from 'node:http';
import { RawSseTestClient } from '@atp/test-utils';
import { CloseCode } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { connect, disposer, log, startFallbackHub } from './helpers.js';

async function sse(url: string) {
  const client = await RawSseTestClient.connect(url);
  disposer.add(() => client.close());
  return client;
}

/**
 * Starts a POST whose body (`bytes` of it sent, chunked) never ends, as a slow or hostile peer's would.
 * `answer` resolves with the status as soon as the server answers, whether or not it read the body.
 */
function unfinishedPost(base: string, path: string, bytes: number) {
  const request = httpRequest(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
  });
  const answer = new Promise<number>((resolve) => {
    request.on('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
  });
  request.on('error', () => {});
  const chunk = Buffer.alloc(64 * 1024, 'a');
  for (let sent = 0; sent < bytes; sent += chunk.length) request.write(chunk);
  disposer.add(() => request.destroy());
  return { answer, request };
}

/** Resolves with how many of `answers` settled within `ms`. */
async function settledWithin(answers: Array<Promise<number>>, ms: number): Promise<number> {
  let settled = 0;
  for (const answer of answers) void answer.then(() => (settled += 1));
  await new Promise((resolve) => setTimeout(resolve, ms));
  return settled;
}

describe('SSE fallback: bounded POST bodies, UTF-8 only', () => {
  it('answers a POST to an unknown session at once instead of buffering its body first', async () => {
    const { base } = await startFallbackHub();
    // 900 KiB sent of a body that never ends: the session is unknown, so none of it need be read.
    const { answer } = unfinishedPost(base, '/api/ws-sse/sessions/AAAAAAAAAAAAAAAAAAAAAA', 900 * 1024);
    expect(await settledWithin([answer], 1000)).toBe(1);
    expect(await answer).toBe(404);
  });

  it('does not buffer a body up to maxBodyBytes for each of many concurrent POSTs to one session', async () => {
    // One session may hold one POST body (1 MiB) at a time; a WebSocket holds at most maxPayload (64 KiB).
    // Here 8 message POSTs and 8 pong POSTs of 512 KiB each are started at once and never finished:
    // all but (at most) one of each kind must be answered without their bodies being kept.
    const { url, base, hub } = await startFallbackHub();
    const client = await sse(url);
    const other = await connect(url);
    await other.request('subscribe', { topic: 'logs', filter: { suite_execution_id: 1 } });
    const posts = Array.from({ length: 8 }, () =>
      unfinishedPost(base, `/api/ws-sse/sessions/${client.session}`, 512 * 1024),
    );
    const pongs = Array.from({ length: 8 }, () =>
      unfinishedPost(base, `/api/ws-sse/sessions/${client.session}/pong`, 512 * 1024),
    );
    const answered = await settledWithin(
      [...posts, ...pongs].map((p) => p.answer),
      1000,
    );
    expect(answered).toBeGreaterThanOrEqual(14);
    await hub.publish(log(1, 'info', 'still served'));
    expect((await other.waitForData(1))[0]?.payload.message).toBe('still served');
  });

  it('closes with 1007 on a POST line that is not valid UTF-8, as a WebSocket text frame would be', async () => {
    const { url } = await startFallbackHub();
    const client = await sse(url);
    const body = Buffer.concat([
      Buffer.from('{"type":"subscribe","id":"u","payload":{"topic":"test:progress","filter":{"test_id":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}}}'),
    ]);
    await client.postRaw(body);
    expect((await client.waitForClose()).code).toBe(CloseCode.InvalidPayload);
    expect(client.messages.some((m) => m.type === 'subscribed')).toBe(false);
  });
});
