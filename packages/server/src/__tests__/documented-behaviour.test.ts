// Each test drives the real hub (WebSocket and HTTP on a loopback port) and checks one behaviour
// docs/PROTOCOL.md states. Where the document lists things in a table (the publish answers, the
// fields of /api/ws/info and /api/ws/clients, the metrics, the history limits), the expectations
// are read from that table, so a change on either side fails here.
import { readFileSync } from 'node:fs';
import { GapReason } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { MemoryBroker } from '../index.js';
import { connect, disposer, progress, publish, startApp } from './express-helpers.js';
import { log } from './helpers.js';

const doc = readFileSync(new URL('../../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
const ADMIN = 'doc-admin-token';
const PUBLISHER = 'doc-publish-token';

/** The text of the section under `heading` (a whole line), up to the next heading of its level or above. */
function section(heading: string): string {
  const lines = doc.split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`docs/PROTOCOL.md has no heading ${heading}`);
  const level = /^#+/.exec(heading)?.[0].length ?? 2;
  const end = lines.findIndex(
    (line, i) => i > start && /^#+ /.test(line) && (/^#+/.exec(line)?.[0].length ?? 9) <= level,
  );
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** The rows of the first Markdown table of a section, cells trimmed and without backticks. */
function firstTable(heading: string): string[][] {
  const rows = section(heading)
    .split('\n')
    .filter((line) => line.startsWith('|'));
  return rows.slice(2).map((line) =>
    line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim().replaceAll('`', '')),
  );
}

const number = (text: string) => Number(text.replaceAll(',', '').split(' ')[0]);

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

describe('docs/PROTOCOL.md: POST /api/ws/publish', () => {
  const documented = firstTable('### `POST /api/ws/publish`').map(([status = '', error = '']) => ({
    status: Number(status),
    error: error === '—' ? undefined : error,
  }));
  const limit = number(/over 1 MiB \(([\d,]+) bytes/.exec(section('### `POST /api/ws/publish`'))?.[1] ?? '0');

  /** How to provoke each documented answer; the checks beyond status and `error` are in the drivers. */
  const drivers: Record<string, () => Promise<void>> = {
    '202': async () => {
      const app = await startApp({ publishToken: PUBLISHER });
      const subscriber = await connect(app.wsUrl);
      await subscriber.request('subscribe', { topic: 'test:progress' });
      const response = await publish(app.base, [progress(1, 1, 10), progress(1, 2, 20)], {
        token: PUBLISHER,
      });
      expect(response.status).toBe(202);
      expect(await json(response)).toEqual({ accepted: 2 });
      expect((await subscriber.waitForData(2)).map((m) => m.payload.test_execution_id)).toEqual([1, 2]);
    },
    '400 invalid_json': async () => {
      const app = await startApp({ publishToken: PUBLISHER });
      const response = await publish(app.base, '{"type": ', { token: PUBLISHER });
      expect(response.status).toBe(400);
      expect(await json(response)).toMatchObject({ error: 'invalid_json' });
    },
    '400 invalid_message': async () => {
      const app = await startApp({ publishToken: PUBLISHER });
      const bad = progress(1, 2, 150);
      const response = await publish(app.base, [progress(1, 1, 10), bad], { token: PUBLISHER });
      expect(response.status).toBe(400);
      const body = await json(response);
      expect(body).toMatchObject({ error: 'invalid_message' });
      expect(body.issues).toEqual([
        { index: 1, path: 'payload.progress_percent', message: expect.any(String) },
      ]);
      // All or nothing: the valid first message was not published either (history is empty).
      const empty = await publish(app.base, [], { token: PUBLISHER });
      expect(empty.status).toBe(400);
      expect(await json(empty)).toMatchObject({ error: 'invalid_message', issues: [{ index: null }] });
      const subscriber = await connect(app.wsUrl);
      const subscribed = await subscriber.request('subscribe', { topic: 'test:progress', from: 'start' });
      expect(subscribed.payload.history).toEqual({ replayed: 0, complete: true });
    },
    '401 unauthorized': async () => {
      const app = await startApp({ publishToken: PUBLISHER });
      const missing = await publish(app.base, progress(1, 1, 10));
      expect(missing.status).toBe(401);
      expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="atp-ws"');
      expect(await json(missing)).toMatchObject({ error: 'unauthorized' });
      const wrong = await publish(app.base, progress(1, 1, 10), { token: 'wrong' });
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="atp-ws", error="invalid_token"');
    },
    '404 not_found': async () => {
      const app = await startApp({ adminToken: ADMIN });
      const response = await publish(app.base, progress(1, 1, 10), { token: PUBLISHER });
      expect(response.status).toBe(404);
      expect(await json(response)).toMatchObject({ error: 'not_found' });
    },
    '413 payload_too_large': async () => {
      const app = await startApp({ publishToken: PUBLISHER });
      const message = (size: number) => {
        const base = JSON.stringify([log(1, 'info', '')]);
        return [log(1, 'info', 'x'.repeat(size - base.length))];
      };
      expect(JSON.stringify(message(limit)).length).toBe(limit);
      const atLimit = await publish(app.base, message(limit), { token: PUBLISHER });
      expect(atLimit.status).toBe(202);
      const over = await publish(app.base, message(limit + 1), { token: PUBLISHER });
      expect(over.status).toBe(413);
      expect(await json(over)).toMatchObject({ error: 'payload_too_large' });
    },
    '415 unsupported_media_type': async () => {
      const app = await startApp({ publishToken: PUBLISHER });
      const response = await publish(app.base, JSON.stringify(progress(1, 1, 1)), {
        token: PUBLISHER,
        contentType: 'text/plain',
      });
      expect(response.status).toBe(415);
      expect(await json(response)).toMatchObject({ error: 'unsupported_media_type' });
    },
    '503 broker_unavailable': async () => {
      const { SwitchableBroker } = await import('./express-helpers.js');
      const broker = new SwitchableBroker();
      const app = await startApp({ publishToken: PUBLISHER }, { broker });
      broker.available = false;
      const response = await publish(app.base, progress(1, 1, 10), { token: PUBLISHER });
      expect(response.status).toBe(503);
      expect(await json(response)).toMatchObject({ error: 'broker_unavailable' });
    },
  };

  it('lists exactly the answers this test provokes', () => {
    const keys = documented.map(({ status, error }) => (error ? `${status} ${error}` : String(status)));
    expect(keys.sort()).toEqual(Object.keys(drivers).sort());
    expect(limit).toBe(1024 * 1024);
  });

  it.each(Object.keys(drivers))('answers %s as documented', async (key) => {
    await drivers[key]?.();
  });

  const rules: Record<string, unknown> = {
    test_progress: {
      ...progress(1, 1, 10),
      payload: { ...progress(1, 1, 10).payload, current_run: 3, total_runs: 2 },
    },
    suite_progress: {
      type: 'suite_progress',
      payload: { suite_execution_id: 1, completed_tests: 3, total_tests: 2, status: 'running' },
    },
    suite_completed: {
      type: 'suite_completed',
      payload: { suite_execution_id: 1, success: true, total_tests: 2, passed_tests: 2, failed_tests: 1 },
    },
    delta_update: {
      type: 'delta_update',
      payload: { resource_type: 'suite', resource_id: '1', sequence: 2, base_sequence: 2, ops: [] },
    },
  };

  it('refuses a message breaking each documented cross-field rule, and publishes nothing', async () => {
    const listed = [...section('### `POST /api/ws/publish`').matchAll(/^- `(\w+)`: /gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.keys(rules).sort());
    const app = await startApp({ publishToken: PUBLISHER });
    for (const [type, message] of Object.entries(rules)) {
      const response = await publish(app.base, message, { token: PUBLISHER });
      const body = await json(response);
      expect([type, response.status, body.error], JSON.stringify(body)).toEqual([
        type,
        400,
        'invalid_message',
      ]);
    }
  });
});

describe('docs/PROTOCOL.md: the other HTTP endpoints', () => {
  it('GET /api/ws/info answers exactly the documented fields', async () => {
    const app = await startApp();
    const body = await json(await fetch(`${app.base}/api/ws/info`));
    const fields = firstTable('### `GET /api/ws/info`').map(([name = '']) => name);
    expect(Object.keys(body).sort()).toEqual(fields.sort());
  });

  it('GET /api/ws/clients answers { clients, total }, each client with exactly the documented fields', async () => {
    const app = await startApp({ adminToken: ADMIN });
    const client = await connect(app.wsUrl, 'client_id=listed');
    await client.request('subscribe', { topic: 'logs' });
    const body = await json(
      await fetch(`${app.base}/api/ws/clients`, { headers: { authorization: `Bearer ${ADMIN}` } }),
    );
    expect(Object.keys(body).sort()).toEqual(['clients', 'total']);
    expect(body.total).toBe(1);
    const [listed] = body.clients as Record<string, unknown>[];
    const fields = firstTable('### `GET /api/ws/clients`').map(([name = '']) => name);
    expect(Object.keys(listed ?? {}).sort()).toEqual(fields.sort());
    expect(listed).toMatchObject({ client_id: 'listed', subscriptions: ['logs'], transport: 'websocket' });
  });

  it('GET /api/ws/metrics exposes exactly the documented metrics with their types', async () => {
    const app = await startApp({ adminToken: ADMIN });
    const response = await fetch(`${app.base}/api/ws/metrics`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const exposed = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    const documented = firstTable('### `GET /api/ws/metrics`').map(([name, type]) => `${name} ${type}`);
    expect(exposed.sort()).toEqual(documented.sort());
  });
});

/** A raw `ws` socket to the hub, for frames the test client would not send. */
async function rawSocket(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers });
  disposer.add(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
  });
  return ws;
}

const closeOf = (ws: WebSocket) =>
  new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));

describe('docs/PROTOCOL.md: connections', () => {
  it('counts the fragments of a message together: two fragments of 40,000 bytes are closed with 1009', async () => {
    expect(doc).toContain('two fragments of 40,000 bytes are closed');
    const app = await startApp();
    const ws = await rawSocket(app.wsUrl);
    const closed = closeOf(ws);
    ws.send(`{"type":"ping","x":"${'a'.repeat(40_000)}`, { fin: false });
    ws.send(`${'a'.repeat(40_000)}"}`, { fin: true });
    expect(await closed).toBe(1009);
  });

  it('closes a text frame that is not UTF-8 with 1007, and answers text that is not JSON with invalid_json', async () => {
    expect(doc).toMatch(/^\| `1007` +\| `CloseCode\.InvalidPayload`/m);
    const app = await startApp();
    const client = await connect(app.wsUrl);
    client.send('not json');
    expect((await client.waitFor((m) => m.type === 'error')).payload.code).toBe('invalid_json');
    expect(client.isOpen).toBe(true);
    const ws = await rawSocket(app.wsUrl);
    const closed = closeOf(ws);
    ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect(await closed).toBe(1007);
  });

  it('ignores a token when authentication is off: a wrong one, a header or none connect alike', async () => {
    const app = await startApp();
    const withToken = await connect(app.wsUrl, 'token=anything-at-all');
    const withHeader = await rawSocket(app.wsUrl, { authorization: 'Bearer nonsense' });
    const without = await connect(app.wsUrl);
    expect([withToken.isOpen, withHeader.readyState === WebSocket.OPEN, without.isOpen]).toEqual([
      true,
      true,
      true,
    ]);
  });

  it('accepts every Origin by default; with a list, the exact origins and a missing Origin, and refuses others with 403', async () => {
    const open = await startApp();
    await rawSocket(open.wsUrl, { origin: 'https://evil.example' });
    const listed = await startApp({}, { allowedOrigins: ['https://dash.example'] });
    await rawSocket(listed.wsUrl, { origin: 'https://dash.example' });
    await rawSocket(listed.wsUrl);
    await expect(rawSocket(listed.wsUrl, { origin: 'https://evil.example' })).rejects.toThrow('HTTP 403');
    await expect(rawSocket(listed.wsUrl, { origin: 'https://dash.example:443' })).rejects.toThrow('HTTP 403');
    const strict = await startApp(
      {},
      { allowedOrigins: ['https://dash.example'], allowMissingOrigin: false },
    );
    await expect(rawSocket(strict.wsUrl)).rejects.toThrow('HTTP 403');
  });

  it('answers one rate_limited without id per run of dropped messages, and closes with 1008 after 200 dropped', async () => {
    const app = await startApp();
    const client = await connect(app.wsUrl);
    // The burst of 100 passes; the rest of a fast flood is dropped unread.
    for (let i = 0; i < 150; i++) client.send({ type: 'ping', id: i });
    await client.waitFor((m) => m.type === 'error');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const errors = client.messages.filter((m) => m.type === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.payload.code).toBe('rate_limited');
    expect(errors[0]).not.toHaveProperty('id');
    const pongs = client.messages.filter((m) => m.type === 'pong').length;
    expect(pongs).toBeGreaterThanOrEqual(100);
    expect(pongs).toBeLessThan(150);
    // 200 dropped in all (these and the ones before) close it.
    const closed = client.waitForClose();
    for (let i = 0; i < 250 && client.isOpen; i++) client.send({ type: 'ping' });
    expect((await closed).code).toBe(1008);
  });
});

describe('docs/PROTOCOL.md: resume and history', () => {
  it('keeps the history limits of the table: trimmed to 90%, a position before the newest dropped is history_truncated', async () => {
    const [memory] = firstTable('## How much history is kept');
    expect(memory?.slice(0, 3).map(number)).toEqual([Number.NaN, 1_000_000, 64]);
    expect(section('## How much history is kept')).toContain('back under 90% of its limits');
    const broker = new MemoryBroker({ maxMessages: 10 });
    const app = await startApp({}, { broker });
    await app.hub.publish(Array.from({ length: 12 }, (_, i) => log(1, 'info', `m${i + 1}`)));
    expect(broker.size).toBe(9); // 12 > 10: the oldest dropped down to 90%, offsets 1-3
    const resume = async (offset: number, clientId: string) => {
      const client = await connect(app.wsUrl, `client_id=${clientId}`);
      return client.request('resume', {
        epoch: broker.epoch,
        offset,
        sequence: 5,
        subscriptions: [{ topic: 'logs' }],
      });
    };
    expect((await resume(2, 'older')).payload).toMatchObject({
      recovered: false,
      reason: GapReason.HistoryTruncated,
    });
    expect((await resume(3, 'kept')).payload).toMatchObject({ recovered: true, complete: true, replayed: 9 });
  });

  it('answers recovered: true to a resume under a client_id it has never seen, and its position is where the replay ends', async () => {
    const app = await startApp();
    await app.hub.publish([log(1, 'info', 'a'), log(1, 'info', 'b'), log(1, 'info', 'c')]);
    const probe = await connect(app.wsUrl, 'client_id=probe');
    const head = (await probe.request('ping')).payload as { epoch: string; offset: number };
    const client = await connect(app.wsUrl, 'client_id=never-seen-before');
    const resumed = await client.request('resume', {
      epoch: head.epoch,
      offset: head.offset - 2,
      sequence: 10,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({ recovered: true, replayed: 2, next_sequence: 11 });
    const replayed = await client.waitForData(2);
    expect(resumed.payload.offset).toBe(replayed[1]?.offset);
  });

  it('after unknown_position: nothing replayed, the position is the head, live messages follow', async () => {
    const app = await startApp();
    await app.hub.publish([log(1, 'info', 'a')]);
    const probe = await connect(app.wsUrl);
    const head = (await probe.request('ping')).payload as { epoch: string; offset: number };
    const client = await connect(app.wsUrl, 'client_id=from-elsewhere');
    const resumed = await client.request('resume', {
      epoch: head.epoch,
      offset: head.offset + 1000,
      sequence: 4,
      subscriptions: [{ topic: 'logs' }],
    });
    expect(resumed.payload).toMatchObject({
      recovered: false,
      reason: GapReason.UnknownPosition,
      replayed: 0,
      epoch: head.epoch,
      offset: head.offset,
      next_sequence: 6,
    });
    await app.hub.publish([log(1, 'info', 'live')]);
    const [live] = await client.waitForData(1);
    expect([live?.sequence, live?.payload.message]).toEqual([6, 'live']);
  });
});
