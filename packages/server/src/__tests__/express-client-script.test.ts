import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_SCRIPT_PATH } from '../express.js';
import { disposer, startApp } from './express-helpers.js';

async function fixtureScript(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'atp-express-'));
  disposer.add(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'browser.global.js');
  await writeFile(path, content);
  return path;
}

describe('GET /static/v2/js/websocket.js', () => {
  it('is served at the path the user guide (docs/GUIDE.md) loads it from', () => {
    expect(CLIENT_SCRIPT_PATH).toBe('/static/v2/js/websocket.js');
  });

  it('serves the script as JavaScript with an ETag and Cache-Control', async () => {
    const clientScript = await fixtureScript('var ATPWebSocket = function () {};\n');
    const { base } = await startApp({ clientScript });
    const response = await fetch(`${base}${CLIENT_SCRIPT_PATH}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('public, max-age=600');
    expect(response.headers.get('etag')).toMatch(/^"[\w-]+"$/);
    expect(response.headers.get('last-modified')).toBeTruthy();
    expect(await response.text()).toBe('var ATPWebSocket = function () {};\n');
  });

  it('answers 304 without a body to a matching If-None-Match, 200 to another', async () => {
    const clientScript = await fixtureScript('var ATPWebSocket = 1;\n');
    const { base } = await startApp({ clientScript, clientScriptMaxAgeSeconds: 60 });
    const first = await fetch(`${base}${CLIENT_SCRIPT_PATH}`);
    const etag = first.headers.get('etag')!;
    expect(first.headers.get('cache-control')).toBe('public, max-age=60');
    const again = await fetch(`${base}${CLIENT_SCRIPT_PATH}`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect(await again.text()).toBe('');
    const listed = await fetch(`${base}${CLIENT_SCRIPT_PATH}`, {
      headers: { 'if-none-match': `"other", ${etag}` },
    });
    expect(listed.status).toBe(304);
    const weak = await fetch(`${base}${CLIENT_SCRIPT_PATH}`, { headers: { 'if-none-match': `W/${etag}` } });
    expect(weak.status).toBe(304);
    const stale = await fetch(`${base}${CLIENT_SCRIPT_PATH}`, { headers: { 'if-none-match': '"stale"' } });
    expect(stale.status).toBe(200);
    expect(await stale.text()).toBe('var ATPWebSocket = 1;\n');
  });

  it('answers HEAD with the headers and no body', async () => {
    const clientScript = await fixtureScript('var ATPWebSocket = 2;\n');
    const { base } = await startApp({ clientScript });
    const response = await fetch(`${base}${CLIENT_SCRIPT_PATH}`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('etag')).toBeTruthy();
    expect(response.headers.get('content-length')).toBe('22');
    expect(await response.text()).toBe('');
  });

  it('serves a rebuilt script with a new ETag', async () => {
    const clientScript = await fixtureScript('var ATPWebSocket = "old";\n');
    const { base } = await startApp({ clientScript });
    const before = await fetch(`${base}${CLIENT_SCRIPT_PATH}`);
    const oldTag = before.headers.get('etag')!;
    await writeFile(clientScript, 'var ATPWebSocket = "new build";\n');
    const later = new Date(Date.now() + 5_000);
    await utimes(clientScript, later, later);
    const after = await fetch(`${base}${CLIENT_SCRIPT_PATH}`, { headers: { 'if-none-match': oldTag } });
    expect(after.status).toBe(200);
    expect(after.headers.get('etag')).not.toBe(oldTag);
    expect(await after.text()).toBe('var ATPWebSocket = "new build";\n');
  });

  it('answers 404 when the script file does not exist, and when disabled', async () => {
    const missing = await startApp({ clientScript: join(tmpdir(), 'no-such-dir-atp', 'browser.global.js') });
    const response = await fetch(`${missing.base}${CLIENT_SCRIPT_PATH}`);
    expect(response.status).toBe(404);
    expect(await response.text()).toMatch(/not available/);
    const disabled = await startApp({ clientScript: false });
    expect((await fetch(`${disabled.base}${CLIENT_SCRIPT_PATH}`)).status).toBe(404);
  });
});
