import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// The renderer is internal: it is shared with scripts/write-protocol-docs.mjs, not exported.
import {
  type GeneratedSectionName,
  generatedSections,
  renderCloseCodeTable,
  renderErrorCodeTable,
  renderGeneratedSection,
  renderTopicTable,
  updateGeneratedSections,
} from '../docs.js';
import {
  CLIENT_MESSAGE_TYPES,
  CloseCode,
  ClientMessageSchema,
  DATA_MESSAGE_TYPES,
  DeliveredDataMessageSchema,
  ErrorCode,
  GapReason,
  parseClientMessage,
  ServerControlMessageSchema,
  TOPICS,
} from '../index.js';

const docFile = new URL('../../../../docs/PROTOCOL.md', import.meta.url);
const doc = readFileSync(docFile, 'utf8');
const REGENERATE =
  'docs/PROTOCOL.md is out of date: run `pnpm --filter @atp/ws-protocol generate` and commit it';

const sectionNames = Object.keys(generatedSections) as GeneratedSectionName[];

function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

/** Whether a Markdown table in `text` has a row whose first cell is `` `first` `` (cells are padded). */
function hasRow(text: string, first: string | number): boolean {
  return text.split('\n').some((line) => line.startsWith(`| \`${first}\` `) && /^\| `[^`]+` +\|/.test(line));
}

describe('docs/PROTOCOL.md', () => {
  it.each(sectionNames)('contains the generated section %s exactly as rendered from the code', (name) => {
    expect(count(doc, `<!-- generated:${name} -->`), `one start marker for ${name}`).toBe(1);
    expect(count(doc, `<!-- /generated:${name} -->`), `one end marker for ${name}`).toBe(1);
    expect(doc.includes(renderGeneratedSection(name)), REGENERATE).toBe(true);
  });

  it('is unchanged by regenerating it', () => {
    expect(updateGeneratedSections(doc) === doc, REGENERATE).toBe(true);
  });

  it('has no generated section that the code does not render', () => {
    const names = [...doc.matchAll(/<!-- generated:([\w:-]+) -->/g)].map((m) => m[1]);
    expect(names.sort()).toEqual([...sectionNames].sort());
  });

  it('has a section for every client and server message', () => {
    for (const type of [
      ...CLIENT_MESSAGE_TYPES,
      'connected',
      'subscribed',
      'unsubscribed',
      'pong',
      'resumed',
      'error',
      'resource',
    ]) {
      expect(doc, `### \`${type}\``).toContain(`### \`${type}\``);
    }
    for (const type of DATA_MESSAGE_TYPES) expect(doc, `#### \`${type}\``).toContain(`#### \`${type}\``);
  });

  it('names every gap reason', () => {
    for (const reason of Object.values(GapReason)) expect(hasRow(doc, reason), reason).toBe(true);
  });

  // Every ```json block is one message, valid for the direction it is shown in.
  const examples = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');

  it('has a JSON example for every message type', () => {
    const types = new Set(examples.map((text) => (JSON.parse(text) as { type: string }).type));
    const all = [...CLIENT_MESSAGE_TYPES, ...DATA_MESSAGE_TYPES];
    for (const type of [
      ...all,
      'connected',
      'subscribed',
      'unsubscribed',
      'pong',
      'resumed',
      'error',
      'resource',
    ]) {
      expect(types, type).toContain(type);
    }
  });

  it.each(examples.map((text, i) => [i + 1, text] as const))(
    'JSON example %i is a valid message',
    (_i, text) => {
      const message = JSON.parse(text) as { type: string };
      if ((CLIENT_MESSAGE_TYPES as readonly string[]).includes(message.type)) {
        expect(ClientMessageSchema.safeParse(message).error).toBeUndefined();
        expect(parseClientMessage(text)).toMatchObject({ ok: true });
      } else if ((DATA_MESSAGE_TYPES as readonly string[]).includes(message.type)) {
        expect(DeliveredDataMessageSchema.safeParse(message).error).toBeUndefined();
      } else {
        expect(ServerControlMessageSchema.safeParse(message).error).toBeUndefined();
      }
    },
  );
});

describe('the generated tables', () => {
  it('list every topic, plus events:<event_type>', () => {
    const table = renderTopicTable();
    for (const topic of [...Object.keys(TOPICS), 'events:<event_type>']) {
      expect(hasRow(table, topic), topic).toBe(true);
    }
  });

  it('list every error code', () => {
    const table = renderErrorCodeTable();
    for (const code of Object.values(ErrorCode)) expect(hasRow(table, code), code).toBe(true);
  });

  it('list every close code and mark the fatal ones', () => {
    const table = renderCloseCodeTable();
    for (const code of Object.values(CloseCode)) expect(hasRow(table, code), String(code)).toBe(true);
    expect(table).toMatch(/^\| `4000` .*\| `true`: never reconnect automatically +\|$/m);
    expect(table).toMatch(/^\| `1013` .*\| `false`: reconnect with backoff +\|$/m);
  });

  it('refuse to update a document that lacks a section', () => {
    expect(() => updateGeneratedSections('# nothing here\n')).toThrow(/generated:topics/);
  });
});
