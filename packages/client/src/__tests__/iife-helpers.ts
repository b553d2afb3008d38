import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { WebSocket } from 'ws';
import type { ATPWebSocket, ATPWebSocketOptions } from '../index.js';
import { disposer } from './helpers.js';

// The IIFE build (dist/browser.global.js) as built, run in a context of its own with `ws` as its WebSocket.
const script = fileURLToPath(new URL('../../dist/browser.global.js', import.meta.url));

export function iifeClass(): typeof ATPWebSocket {
  if (!existsSync(script))
    throw new Error(
      `${script} is missing: run \`pnpm --filter @atp/ws-client build\` (pnpm test builds first)`,
    );
  const context: Record<string, unknown> = {
    WebSocket,
    URL,
    console,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
  };
  context.globalThis = context;
  runInNewContext(readFileSync(script, 'utf8'), context);
  return context.ATPWebSocket as typeof ATPWebSocket;
}

/** A client of the IIFE build, quick to reconnect, disconnected after the test. */
export function newIifeClient(url: string, options: ATPWebSocketOptions = {}): ATPWebSocket {
  const Client = iifeClass();
  const ws = new Client({
    url,
    reconnectInterval: 20,
    maxReconnectInterval: 100,
    pingInterval: 0,
    ...options,
  });
  disposer.add(() => ws.disconnect());
  return ws;
}
