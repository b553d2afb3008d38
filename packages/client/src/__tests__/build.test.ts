import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

const dist = fileURLToPath(new URL('../../dist/', import.meta.url));

function built(file: string): string {
  const path = dist + file;
  if (!existsSync(path))
    throw new Error(
      `${path} is missing: run \`pnpm --filter @atp/ws-client build\` (pnpm test builds first)`,
    );
  return readFileSync(path, 'utf8');
}

describe('builds', () => {
  // The budget of issue 14: 5 KB gzipped (node:zlib's default level). What does not fit is in the
  // ESM/CJS builds only (README, Builds).
  it('keeps the IIFE browser build within 5 KB gzipped', () => {
    const size = gzipSync(built('browser.global.js')).length;
    expect(size).toBeLessThan(5120);
  });

  it('ships no zod in any build (only the protocol’s zod-free modules are bundled)', () => {
    for (const file of ['browser.global.js', 'index.js', 'index.cjs']) {
      const code = built(file);
      expect(code).not.toMatch(/zod|ZodError|safeParse/);
      expect(code).not.toMatch(/from ['"]@atp\/ws-protocol['"]|require\(['"]@atp\/ws-protocol['"]\)/);
    }
  });

  it('never imports ws or node: modules', () => {
    for (const file of ['browser.global.js', 'index.js', 'index.cjs']) {
      expect(built(file)).not.toMatch(
        /\bimport\s*(?:[\w{},*\s]+from\s*)?['"](?:ws|node:[\w/]+)['"]|\brequire\(\s*['"](?:ws|node:[\w/]+)['"]\s*\)/,
      );
    }
    expect(built('index.js')).toMatch(/from ['"]eventemitter3['"]/);
  });

  it('defines globalThis.ATPWebSocket with its constants when the IIFE runs in a bare context', () => {
    const context: Record<string, unknown> = {};
    context.globalThis = context;
    runInNewContext(built('browser.global.js'), context);
    const ATPWebSocket = context.ATPWebSocket as {
      CloseCode?: Record<string, number>;
      GapReason: Record<string, string>;
    };
    expect(typeof ATPWebSocket).toBe('function');
    expect(ATPWebSocket.GapReason.EpochChanged).toBe('epoch_changed');
    // The close codes are ESM/CJS only (the numbers are in the README).
    expect(ATPWebSocket.CloseCode).toBeUndefined();
  });

  it('says so when the IIFE is asked for what only the ESM/CJS builds have', async () => {
    const context: Record<string, unknown> = { setTimeout, clearTimeout };
    context.globalThis = context;
    runInNewContext(built('browser.global.js'), context);
    type Client = {
      subscribe(topic: string, filter?: object, options?: object): () => void;
      iterate(topic: string): AsyncGenerator<unknown>;
      send(message: object): void;
      reconnect(): Promise<void>;
      once(event: string, handler: () => void): () => void;
    };
    const ATPWebSocket = context.ATPWebSocket as new (options: object) => Client;
    const url = 'ws://127.0.0.1:9/x';
    const ws = new ATPWebSocket({ url });
    const esmOnly = /: ESM\/CJS only$/;
    expect(() => ws.subscribe('logs', {}, { from: 'start' })).toThrow(esmOnly);
    expect(() => ws.subscribe('logs', {}, { signal: new AbortController().signal })).toThrow(esmOnly);
    expect(() => new ATPWebSocket({ url, token: () => 't' })).toThrow(esmOnly);
    expect(() => new ATPWebSocket({ url, retryDelay: () => 20 })).toThrow(esmOnly);
    expect(() => new ATPWebSocket({ url, clientId: 'tab-1' })).toThrow(esmOnly);
    expect(() => new ATPWebSocket({ url, token: 'secret' })).toThrow(esmOnly);
    expect(() => new ATPWebSocket({ url, query: { tenant: 'a' } })).toThrow(esmOnly);
    // Methods the IIFE does not have: calling them throws TypeError (… is not a function).
    expect(() => ws.send({ type: 'ping' })).toThrow(TypeError);
    expect(() => ws.reconnect()).toThrow(TypeError);
    expect(() => ws.iterate('logs')).toThrow(TypeError);
    expect(() => ws.once('connect', () => {})).toThrow(TypeError);
    // subscribe() returns the release function alone.
    const release = ws.subscribe('logs');
    expect(typeof release).toBe('function');
    expect(release).not.toHaveProperty('ready');
    expect(release).not.toHaveProperty('unsubscribe');
    release();
  });

  it('resolves the exports map: ESM, CJS and the browser file the server serves', async () => {
    const require = createRequire(import.meta.url);
    expect(require.resolve('@atp/ws-client/browser.global.js')).toBe(`${dist}browser.global.js`);
    const cjs = require(`${dist}index.cjs`) as { ATPWebSocket: unknown; DeltaStore: unknown };
    const esm = (await import(`${dist}index.js`)) as { ATPWebSocket: unknown };
    expect(typeof cjs.ATPWebSocket).toBe('function');
    expect(typeof cjs.DeltaStore).toBe('function');
    expect(typeof esm.ATPWebSocket).toBe('function');
    expect(existsSync(`${dist}index.d.ts`) && existsSync(`${dist}index.d.cts`)).toBe(true);
  });
});
