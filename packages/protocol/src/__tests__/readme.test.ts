import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as protocol from '../index.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README.md', () => {
  it('starts with an example that runs against the public API and prints what its comments say', () => {
    const example = /```js\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const body = example.replace(/^import \{([^}]*)\} from '@atp\/ws-protocol';$/m, 'const {$1} = protocol;');
    expect(body, 'the example imports only from @atp/ws-protocol').not.toMatch(/^import /m);
    const printed: unknown[] = [];
    const run = new Function('protocol', 'console', body) as (
      p: typeof protocol,
      c: Pick<Console, 'log'>,
    ) => void;
    run(protocol, { log: (value: unknown) => printed.push(value) });
    // Each console.log is followed by a comment with what it prints.
    const promised = [...example.matchAll(/console\.log\([^\n]*\);(?: \/\/ (.*)|\n\/\/ (.*))/g)].map(
      (m) => m[1] ?? m[2],
    );
    expect(promised).toHaveLength(2);
    expect(printed.map(String)).toEqual(promised);
  });

  it('names every runtime export of the package', () => {
    for (const name of Object.keys(protocol)) expect(readme, name).toContain(`\`${name}`);
  });

  it('links the protocol document and the JSON Schema with links that work on npm', () => {
    const repo = 'https://github.com/atp-dashboard/atp-ws/blob/main/';
    expect(readme).toContain(`(${repo}docs/PROTOCOL.md)`);
    expect(readme).toContain('@atp/ws-protocol/schema.json');
    expect(readme).toContain(`(${repo}packages/protocol/schema/atp-ws-protocol.schema.json)`);
    // Every link into the repository names a file that exists in it.
    const root = new URL('../../../../', import.meta.url);
    for (const [, path] of readme.matchAll(
      /\]\(https:\/\/github\.com\/atp-dashboard\/atp-ws\/blob\/main\/([^)#]+)/g,
    )) {
      expect(existsSync(new URL(path ?? '', root)), path).toBe(true);
    }
  });
});
