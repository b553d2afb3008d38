import { readFileSync } from 'node:fs';
import { ATPWebSocket } from '@atp/ws-client';
import {
  assertDataMessage,
  DATA_MESSAGE_TYPES,
  type DataMessage,
  DeltaUpdatePayloadSchema,
  EventPayloadSchema,
  LogEntryPayloadSchema,
  parseClientMessage,
  SuiteCompletedPayloadSchema,
  SuiteProgressPayloadSchema,
  TestCompletedPayloadSchema,
  TestProgressPayloadSchema,
} from '@atp/ws-protocol';
import { type ATPWebSocketServer, createATPWebSocketServer } from '@atp/ws-server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';

// docs/GUIDE.md promises that every code block runs as printed. This file holds it to that: included
// examples are the files examples.test.ts runs, JSON messages pass the protocol's schemas, and each
// JavaScript block runs against a real hub and prints what the text block after it says.

const guidePath = new URL('../../docs/GUIDE.md', import.meta.url);
const guide = readFileSync(guidePath, 'utf8');

interface Block {
  readonly lang: string;
  readonly code: string;
  /** The `<!-- example: path -->` marker right before the block, if any. */
  readonly example: string | undefined;
  /** Index in the list of blocks. */
  readonly index: number;
}

function blocks(markdown: string): Block[] {
  const found: Block[] = [];
  const fence = /(?:<!-- example: (\S+) -->\n\n)?```(\w*)\n([\s\S]*?)```/g;
  for (let match = fence.exec(markdown); match; match = fence.exec(markdown)) {
    found.push({ example: match[1], lang: match[2] ?? '', code: match[3] ?? '', index: found.length });
  }
  return found;
}

const all = blocks(guide);

const payloadSchemas = {
  test_progress: TestProgressPayloadSchema,
  test_completed: TestCompletedPayloadSchema,
  suite_progress: SuiteProgressPayloadSchema,
  suite_completed: SuiteCompletedPayloadSchema,
  log_entry: LogEntryPayloadSchema,
  event: EventPayloadSchema,
  delta_update: DeltaUpdatePayloadSchema,
} as const;
const dataExamples = new Map<string, DataMessage>();
for (const block of all) {
  if (block.lang !== 'json') continue;
  const message = JSON.parse(block.code) as { type: string };
  if ((DATA_MESSAGE_TYPES as readonly string[]).includes(message.type))
    dataExamples.set(message.type, message as DataMessage);
}

describe('docs/GUIDE.md', () => {
  it('includes the example files verbatim, and every example the tests run', () => {
    const included = all.filter((block) => block.example !== undefined);
    for (const block of included) {
      const file = readFileSync(new URL(`../../${block.example}`, import.meta.url), 'utf8');
      expect(block.code, block.example).toBe(file);
    }
    expect(included.map((block) => block.example).sort()).toEqual([
      'examples/minimal/app.tsx',
      'examples/minimal/server.mjs',
      'examples/publisher/redis.mjs',
      'examples/publisher/rest.mjs',
      'examples/script-page/index.html',
    ]);
  });

  it('has one valid example of every data message type, and a valid subscribe', () => {
    const json = all.filter((block) => block.lang === 'json');
    for (const block of json) {
      const message = JSON.parse(block.code) as { type: string };
      if (message.type === 'subscribe')
        expect(parseClientMessage(block.code)).toMatchObject({ ok: true, message: { type: 'subscribe' } });
      else expect(assertDataMessage(message).type).toBe(message.type);
    }
    expect([...dataExamples.keys()].sort()).toEqual([...DATA_MESSAGE_TYPES].sort());
  });

  it('has only blocks this file checks', () => {
    const unchecked = all.filter(
      (block) => block.example === undefined && !['json', 'js', 'text'].includes(block.lang),
    );
    expect(unchecked.map((block) => block.code)).toEqual([]);
  });

  const runnable = all.filter((block) => block.lang === 'js' && block.example === undefined);
  let hub: ATPWebSocketServer | undefined;
  afterEach(async () => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
    await hub?.close();
    hub = undefined;
  });

  it.each(
    runnable.map((block) => [
      block.code.split('\n').find((line) => line.includes('new ATPWebSocket')),
      block,
    ]),
  )('runs the JavaScript block with %s and prints what docs/GUIDE.md says', async (_title, block) => {
    hub = createATPWebSocketServer({ port: 0 });
    await hub.ready;
    const host = `127.0.0.1:${hub.address()?.port}`;
    // A page's globals, for the blocks written for a page.
    vi.stubGlobal('location', { protocol: 'http:', host, href: `http://${host}/` });
    vi.stubGlobal('WebSocket', WebSocket);
    const printed: string[] = [];
    const print = (...args: unknown[]) => printed.push(args.map(String).join(' '));
    vi.spyOn(console, 'log').mockImplementation(print);
    vi.spyOn(console, 'warn').mockImplementation(print);

    // The imports become parameters bound to the same modules; the rest runs as printed, with the
    // localhost:8000 of GUIDE.md pointed at this test's hub.
    const imports: Record<string, unknown> = { ATPWebSocket, WebSocket };
    const lines = block.code.split('\n');
    for (const line of lines.filter((l) => l.startsWith('import '))) {
      const names = /\{ ([\w, ]+) \}/.exec(line)?.[1]?.split(', ') ?? [];
      for (const name of names) expect(imports, line).toHaveProperty(name);
    }
    const body = `${lines
      .filter((l) => !l.startsWith('import '))
      .join('\n')
      .replaceAll('localhost:8000', host)}\nreturn ws;`;
    const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
      ...args: string[]
    ) => (...values: unknown[]) => Promise<ATPWebSocket>;
    const run = new AsyncFunction(...Object.keys(imports), body);
    const ws = await run(...Object.values(imports));
    try {
      if (ws.state !== 'idle') {
        await vi.waitFor(() => expect(ws.state === 'open' && ws.pendingRequests === 0).toBe(true));
        await hub.publish([
          dataExamples.get('test_progress') as DataMessage,
          dataExamples.get('suite_completed') as DataMessage,
          dataExamples.get('log_entry') as DataMessage,
        ]);
      }
      const next = all[block.index + 1];
      const expected = next?.lang === 'text' ? next.code.trimEnd().split('\n') : [];
      await vi.waitFor(() => expect(printed).toEqual(expected));
      // Nothing more arrives later.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(printed).toEqual(expected);
    } finally {
      ws.disconnect();
    }
  });
});

describe('the payload section of packages/protocol/README.md', () => {
  const readme = readFileSync(new URL('../../packages/protocol/README.md', import.meta.url), 'utf8');
  const section = readme.slice(
    readme.indexOf('## Payloads of the data messages'),
    readme.indexOf('## JSON Schema'),
  );
  const examples = blocks(section).filter((block) => block.lang === 'json');

  it('has one valid example of every data message type, each with every field of its schema', () => {
    const types = examples.map((block) => (JSON.parse(block.code) as { type: string }).type);
    expect(types).toEqual([...DATA_MESSAGE_TYPES]);
    for (const block of examples) {
      const message = assertDataMessage(JSON.parse(block.code));
      const schema = payloadSchemas[message.type];
      expect(Object.keys(message.payload).sort(), message.type).toEqual(Object.keys(schema.shape).sort());
    }
  });

  it('lists the required fields of each type as the schemas have them', () => {
    for (const block of examples) {
      const type = (JSON.parse(block.code) as { type: DataMessage['type'] }).type;
      const shape = payloadSchemas[type].shape as Record<
        string,
        { safeParse(value: unknown): { success: boolean } }
      >;
      const required = Object.keys(shape).filter((key) => !shape[key]?.safeParse(undefined).success);
      const after = section.slice(section.indexOf(block.code) + block.code.length);
      const listed = /Required: ([^.]+)\./.exec(after)?.[1]?.split(', ');
      expect(listed, type).toEqual(required);
    }
  });
});
