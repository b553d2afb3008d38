import type { Writable } from 'node:stream';
import * as ws from 'ws';
import { describe, expect, it } from 'vitest';
import {
  dataFrameSize,
  dataMessage,
  digitCount,
  frameSize,
  textFrameSize,
  writeDataFrame,
  writeTextFrame,
} from '../frames.js';

// The frame functions are checked against the decoder of `ws` itself (its
// Receiver, as a client reading server frames): what they write must be the
// frames a WebSocket client reads, at each header size (7-bit, 16-bit and
// 64-bit payload lengths), several frames back to back in one buffer.

type ReceiverLike = Writable & {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void;
};
const Receiver = (ws as unknown as { Receiver: new (options: { isServer: boolean }) => ReceiverLike })
  .Receiver;

/** Decodes `bytes` as server frames with `ws`'s receiver; fails on a malformed frame. */
async function decode(bytes: Buffer): Promise<Array<{ text: string; binary: boolean }>> {
  const receiver = new Receiver({ isServer: false });
  const messages: Array<{ text: string; binary: boolean }> = [];
  receiver.on('message', (data, binary) => messages.push({ text: data.toString('utf8'), binary }));
  await new Promise<void>((resolve, reject) => {
    receiver.on('error', reject);
    receiver.write(bytes, (error) => (error ? reject(error) : resolve()));
  });
  return messages;
}

const prefixOf = (length: number) => {
  const head = '{"type":"log","payload":{"line":"';
  const tail = '"},"epoch":"e1","offset":7,"sequence":';
  return Buffer.from(head + 'x'.repeat(Math.max(0, length - head.length - tail.length)) + tail);
};

describe('frames', () => {
  it('counts decimal digits', () => {
    const values = [0, 1, 9, 10, 99, 100, 12345, 999_999, 1_000_000, 2 ** 31, 2 ** 53 - 1];
    for (const value of values) expect(digitCount(value)).toBe(String(value).length);
  });

  it('sizes headers at the 7-bit, 16-bit and 64-bit length boundaries', () => {
    expect([0, 125, 126, 65_535, 65_536].map(frameSize)).toEqual([2, 127, 130, 65_539, 65_546]);
  });

  for (const length of [40, 123, 124, 126, 1000, 65_530, 65_536, 70_000]) {
    for (const sequence of [1, 9, 10, 4711, 123_456_789]) {
      it(`writes a data frame ws decodes (prefix ${length} bytes, sequence ${sequence})`, async () => {
        const prefix = prefixOf(length);
        const size = dataFrameSize(prefix, sequence);
        const target = Buffer.alloc(size + 3, 0xee);
        expect(writeDataFrame(target, 3, prefix, sequence)).toBe(3 + size);
        const [message, ...rest] = await decode(target.subarray(3));
        expect(rest).toEqual([]);
        expect(message?.binary).toBe(false);
        const parsed = JSON.parse(message?.text ?? '');
        expect(parsed.sequence).toBe(sequence);
        expect(parsed.offset).toBe(7);
        expect(message?.text).toBe(dataMessage(prefix, sequence).toString('utf8'));
      });
    }
  }

  it('writes text frames (multi-byte UTF-8 counted in bytes) and data frames back to back', async () => {
    const texts = [
      '{"type":"pong"}',
      `{"type":"error","payload":{"message":"${'é'.repeat(70)}"}}`,
      'ü'.repeat(40_000),
    ];
    const prefix = prefixOf(200);
    const size = texts.reduce((sum, text) => sum + textFrameSize(text), 0) + dataFrameSize(prefix, 42);
    const target = Buffer.alloc(size);
    let at = 0;
    for (const text of texts) at = writeTextFrame(target, at, text);
    at = writeDataFrame(target, at, prefix, 42);
    expect(at).toBe(size);
    const messages = await decode(target);
    expect(messages.map((m) => m.text)).toEqual([...texts, `${prefix.toString('utf8')}42}`]);
    expect(messages.every((m) => !m.binary)).toBe(true);
  });
});
