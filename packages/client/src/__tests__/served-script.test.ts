import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { createATPWebSocketServer } from '@atp/ws-server';
import { CLIENT_SCRIPT_PATH, createATPRouter } from '@atp/ws-server/express';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { disposer } from './helpers.js';

// @atp/ws-server's Express router serves this package's IIFE build (this
// package is its optional peer dependency): by default, the file
// `@atp/ws-client/browser.global.js` resolves to, which is this package's build.

describe('the browser script served by @atp/ws-server/express', () => {
  it('is this package’s IIFE build by default, and defines the global ATPWebSocket', async () => {
    const app = express();
    const server = createServer(app);
    const hub = createATPWebSocketServer({ server });
    app.use(createATPRouter(hub));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    disposer.add(async () => {
      await hub.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const response = await fetch(`${base}${CLIENT_SCRIPT_PATH}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    const code = await response.text();
    const built = await readFile(
      fileURLToPath(new URL('../../dist/browser.global.js', import.meta.url)),
      'utf8',
    );
    expect(code).toBe(built);
    const sandbox: Record<string, unknown> = {};
    sandbox.globalThis = sandbox;
    sandbox.window = sandbox;
    sandbox.self = sandbox;
    runInNewContext(code, sandbox);
    expect(typeof sandbox.ATPWebSocket).toBe('function');
  });
});
