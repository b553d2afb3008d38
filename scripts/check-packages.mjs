#!/usr/bin/env node
// Proves that the packages install as published: `pnpm pack`s every public package (pnpm rewrites
// `workspace:` ranges to real versions, which `npm pack` does not), installs the tarballs with plain
// `npm install` in a fresh temporary folder (the tarballs from disk, third-party dependencies from the
// registry or npm's cache), then checks there that every entry point loads with `require` and `import`
// and that the types compile with `tsc --noEmit` (ESM and CommonJS, strict). Needs the packages built
// (`pnpm build`). Each step is bounded in time; the whole check fails after about 5 minutes at most.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const keep = process.argv.includes('--keep');
const work = mkdtempSync(join(tmpdir(), 'atp-packages-'));
const tarballs = join(work, 'tarballs');
const app = join(work, 'app');
mkdirSync(tarballs);
mkdirSync(app);

function run(command, args, cwd, timeoutMs) {
  try {
    return execFileSync(command, args, { cwd, timeout: timeoutMs, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const output = `${error.stdout ?? ''}${error.stderr ?? ''}`;
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${error.message}\n${output}`);
  }
}

function step(text) {
  process.stdout.write(`check-packages: ${text}\n`);
}

try {
  const packages = readdirSync(join(root, 'packages'))
    .map((dir) => ({
      dir: join(root, 'packages', dir),
      json: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')),
    }))
    .filter(({ json }) => json.private !== true);

  step(`packing ${packages.map(({ json }) => json.name).join(', ')}`);
  for (const { dir } of packages) run('pnpm', ['pack', '--pack-destination', tarballs], dir, 60_000);
  const files = readdirSync(tarballs).filter((file) => file.endsWith('.tgz'));
  if (files.length !== packages.length)
    throw new Error(`expected ${packages.length} tarballs, got ${files.join(', ')}`);

  // No workspace: range may be left in a tarball: npm cannot install it (EUNSUPPORTEDPROTOCOL).
  for (const file of files) {
    const manifest = run('tar', ['-xzOf', join(tarballs, file), 'package/package.json'], work, 30_000);
    if (manifest.includes('workspace:'))
      throw new Error(`${file} still has a workspace: range:\n${manifest}`);
    const json = JSON.parse(manifest);
    if (!json.repository?.url) throw new Error(`${file} has no repository field`);
  }

  // What a user installs beside the packages: their peers, and the types of ws for the server's.
  writeFileSync(
    join(app, 'package.json'),
    `${JSON.stringify({ name: 'atp-install-check', private: true }, null, 2)}\n`,
  );
  const rootJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const dashboard = JSON.parse(readFileSync(join(root, 'apps', 'dashboard', 'package.json'), 'utf8'));
  const peers = [
    `express@${dashboard.dependencies.express}`,
    `react@${dashboard.dependencies.react}`,
    `@types/node@${rootJson.devDependencies['@types/node']}`,
    `@types/react@${dashboard.devDependencies['@types/react']}`,
    `@types/express@${dashboard.devDependencies['@types/express']}`,
  ];
  step(`npm install ${files.join(' ')} ${peers.join(' ')}`);
  run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      ...files.map((f) => join(tarballs, f)),
      ...peers,
    ],
    app,
    240_000,
  );

  // Every JavaScript entry point, through require and import.
  const entries = [];
  for (const { json } of packages) {
    for (const [subpath, target] of Object.entries(json.exports ?? { '.': json.main })) {
      if (subpath.endsWith('.json') || subpath.endsWith('.global.js')) continue; // data, and the <script> build
      const conditions = typeof target === 'string' ? {} : target;
      const specifier = subpath === '.' ? json.name : `${json.name}/${subpath.slice(2)}`;
      entries.push({ specifier, require: 'require' in conditions || 'default' in conditions, import: true });
    }
  }
  const requires = entries.filter((e) => e.require).map((e) => e.specifier);
  writeFileSync(
    join(app, 'check.cjs'),
    `for (const name of ${JSON.stringify(requires)}) {\n  const loaded = require(name);\n  if (Object.keys(loaded).length === 0) throw new Error(name + ' exports nothing through require');\n}\nconsole.log('require: ok');\n`,
  );
  writeFileSync(
    join(app, 'check.mjs'),
    `for (const name of ${JSON.stringify(entries.map((e) => e.specifier))}) {\n  const loaded = await import(name);\n  if (Object.keys(loaded).length === 0) throw new Error(name + ' exports nothing through import');\n}\nconsole.log('import: ok');\n`,
  );
  step('require and import every entry point');
  process.stdout.write(run(process.execPath, ['check.cjs'], app, 30_000));
  process.stdout.write(run(process.execPath, ['check.mjs'], app, 30_000));

  // The types, as a strict TypeScript user compiles against them, as ESM and as CommonJS.
  const use = `
const ws = new ATPWebSocket({ url: 'ws://localhost:8000/api/ws/updates' });
ws.on('test_progress', (data, meta) => {
  const percent: number = data.progress_percent;
  const sequence: number = meta.sequence;
  void [percent, sequence];
});
// @ts-expect-error: a payload without its required fields does not type-check
const invalid: DataMessage = { type: 'test_progress', payload: {} };
void invalid;
const hub = createATPWebSocketServer({ port: 0, broker: new MemoryBroker() });
void hub.publish({ type: 'log_entry', payload: { level: 'info', message: 'hi', timestamp: new Date().toISOString() } });
void [createATPRouter, RedisBroker, createRedisPublisher, ATPWebSocketProvider, useATPWebSocket];
`;
  const imports = {
    '@atp/ws-client': ['ATPWebSocket'],
    '@atp/ws-protocol': ['type DataMessage'],
    '@atp/ws-server': ['createATPWebSocketServer', 'MemoryBroker'],
    '@atp/ws-server/express': ['createATPRouter'],
    '@atp/ws-redis': ['RedisBroker', 'createRedisPublisher'],
    '@atp/ws-react': ['ATPWebSocketProvider', 'useATPWebSocket'],
  };
  const head = Object.entries(imports)
    .map(([name, names]) => `import { ${names.join(', ')} } from '${name}';`)
    .join('\n');
  writeFileSync(join(app, 'types.mts'), `${head}\n${use}`);
  writeFileSync(join(app, 'types.cts'), `${head}\n${use}`);
  writeFileSync(
    join(app, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          lib: ['ES2022', 'DOM'],
          types: ['node'],
          skipLibCheck: false,
        },
        files: ['types.mts', 'types.cts'],
      },
      null,
      2,
    )}\n`,
  );
  step('tsc --noEmit against the installed types (ESM and CommonJS)');
  run(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
    app,
    300_000,
  );
  step('ok: every public package installs with npm from its tarball, loads, and type-checks');
} finally {
  if (keep) step(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
