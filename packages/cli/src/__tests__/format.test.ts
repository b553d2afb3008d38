import { describe, expect, it } from 'vitest';
import { formatMessage, paintFor } from '../format.js';

const tty = (hasColors: boolean) =>
  ({ isTTY: true, hasColors: () => hasColors }) as unknown as NodeJS.WriteStream;
const pipe = { isTTY: false } as unknown as NodeJS.WriteStream;
const message = {
  type: 'log_entry',
  payload: {
    suite_execution_id: 42,
    level: 'error',
    message: 'disk full',
    timestamp: '2024-01-15T10:30:00Z',
  },
  sequence: 3,
  epoch: 'e1',
  offset: 9,
} as const;

describe('colour', () => {
  it('is on for a terminal that has colours, off for a pipe, and off with NO_COLOR set', () => {
    expect(formatMessage(message, paintFor(tty(true), {}))).toContain('\u001b[31mERROR');
    expect(formatMessage(message, paintFor(tty(false), {}))).not.toContain('\u001b[');
    expect(formatMessage(message, paintFor(pipe, {}))).not.toContain('\u001b[');
    expect(formatMessage(message, paintFor(tty(true), { NO_COLOR: '1' }))).not.toContain('\u001b[');
  });

  it('leaves the readable line the same, colour or not', () => {
    const plain = formatMessage(message, paintFor(pipe, {}));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping the escape codes is the point
    const stripped = formatMessage(message, paintFor(tty(true), {})).replace(/\u001b\[\d+m/g, '');
    expect(plain).toBe('2024-01-15T10:30:00Z #3 log_entry ERROR disk full suite_execution_id=42');
    expect(stripped).toBe(plain);
  });
});
