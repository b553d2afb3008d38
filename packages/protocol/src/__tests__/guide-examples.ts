// The JSON examples of the user guide, docs/GUIDE.md, read from it: its subscribe example and its
// example of every data message ("Message payloads"), as text, so that they are exactly what a reader
// of docs/GUIDE.md would send.
import { readFileSync } from 'node:fs';
import type { DataMessageType } from '../index.js';

const guide = readFileSync(new URL('../../../../docs/GUIDE.md', import.meta.url), 'utf8');
const jsonBlocks = [...guide.matchAll(/```json\n([\s\S]*?)```/g)].map((match) => match[1] as string);
const byType = new Map(jsonBlocks.map((text) => [(JSON.parse(text) as { type: string }).type, text]));

function example(type: string): string {
  const text = byType.get(type);
  if (text === undefined) throw new Error(`docs/GUIDE.md has no JSON example of ${type}`);
  return text;
}

/** The subscribe example of docs/GUIDE.md. */
export const guideSubscribeExample = example('subscribe');

/** The data message examples of docs/GUIDE.md, keyed by message type, in its order. */
export const guideDataExamples: Readonly<Record<DataMessageType, string>> = Object.fromEntries(
  jsonBlocks
    .map((text) => (JSON.parse(text) as { type: string }).type)
    .filter((type) => type !== 'subscribe')
    .map((type) => [type, example(type)]),
) as Record<DataMessageType, string>;
