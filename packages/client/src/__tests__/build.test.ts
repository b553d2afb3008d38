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
  // The budget was 5 KB until the client stopped losing subscriptions to the rate limit (pacing and
  // request tracking), refused subscriptions and throwing listeners: those fixes alone weigh about
  // 1.5 KB, and the IIFE keeps them. What only the ESM/CJS builds need stays out (see the README).
  it('keeps the IIFE browser build under 7.5 KB gzipped', () => {
    const size = gzipSync(built('browser.global.js')).length;
    expect(size).toBeLessThan(7680);
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
      CloseCode: Record<string, number>;
      GapReason: Record<string, string>;
    };
    expect(typeof ATPWebSocket).toBe('function');
    expect(ATPWebSocket.CloseCode.GoingAway).toBe(1001);
    expect(ATPWebSocket.GapReason.EpochChanged).toBe('epoch_changed');
  });

  it('says so when the IIFE is asked for what only the ESM/CJS builds have', () => {
    const context: Record<string, unknown> = { setTimeout, clearTimeout };
    context.globalThis = context;
    runInNewContext(built('browser.global.js'), context);
    const ATPWebSocket = context.ATPWebSocket as new (
      options: object,
    ) => {
      subscribe(topic: string): { on(event: string, handler: () => void): () => void; unsubscribe(): void };
    };
    const subscription = new ATPWebSocket({ url: 'ws://127.0.0.1:9/x' }).subscribe('logs');
    expect(() => subscription.on('message', () => {})).toThrow(/ESM\/CJS builds only/);
    expect(typeof subscription.on('error', () => {})).toBe('function');
    subscription.unsubscribe();
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
