import type { DataMessage } from '@atp/ws-protocol';
import { describe, expect, it } from 'vitest';
import { dataMessage } from '../frames.js';
import { prepareEntry } from '../outbound.js';
import { supersedeKeyOf } from '../supersede.js';

// prepareEntry writes each message's frame prefix straight into its buffer, piece by piece
// (the message's JSON without its `}`, the epoch and offset, `"sequence":`). What a client reads
// must be the message with those fields, whatever its characters, the number of digits of its
// offset, or the epoch of the entry before it.

const progress = (suite: number, text: string): DataMessage => ({
  type: 'test_progress',
  payload: {
    suite_execution_id: suite,
    test_execution_id: 2,
    test_id: 't-1',
    status: 'running',
    progress_percent: 50,
    message: text,
  },
});

const log = (text: string): DataMessage => ({
  type: 'log_entry',
  payload: { suite_execution_id: 3, level: 'info', message: text, timestamp: '2026-12-05T08:00:00Z' },
});

describe('prepareEntry', () => {
  const texts = ['plain', 'accents: é à ü', 'emoji 🧪 and CJK 測試', 'quote " backslash \\ newline \n', ''];
  const offsets = [1, 9, 10, 99_999, 1_000_000, 2 ** 40];
  const epochs = ['AbCdEfGh', 'other-epoch', 'AbCdEfGh'];

  it('writes the message, its epoch and offset, then the sequence, as one JSON object', () => {
    let n = 0;
    for (const epoch of epochs) {
      for (const text of texts) {
        for (const offset of offsets) {
          const message = n++ % 2 === 0 ? progress(7, text) : log(text);
          const json = JSON.stringify(message);
          const entry = prepareEntry(epoch, { offset, message, json });
          const sequence = 1 + (n % 1234);
          const payload = dataMessage(entry.prefix, sequence).toString('utf8');
          expect(JSON.parse(payload)).toEqual({ ...message, epoch, offset, sequence });
          expect(payload).toBe(
            `${json.slice(0, -1)},"epoch":"${epoch}","offset":${offset},"sequence":${sequence}}`,
          );
          expect(entry.epoch).toBe(epoch);
          expect(entry.offset).toBe(offset);
        }
      }
    }
  });

  it("takes the broker's supersede key when the entry has one, and computes it otherwise", () => {
    const message = progress(4, 'x');
    const json = JSON.stringify(message);
    expect(prepareEntry('e', { offset: 1, message, json }).supersedeKey).toBe(supersedeKeyOf(message));
    expect(prepareEntry('e', { offset: 1, message, json, supersedeKey: 'from-broker' }).supersedeKey).toBe(
      'from-broker',
    );
    expect(
      prepareEntry('e', { offset: 1, message: log('y'), json: JSON.stringify(log('y')) }).supersedeKey,
    ).toBe(undefined);
  });
});
