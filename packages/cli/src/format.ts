import { styleText } from 'node:util';
import type { DeliveredDataMessage } from '@atp/ws-protocol';

type Style = Parameters<typeof styleText>[0];

/** Styles text, or leaves it plain when colour is off. */
export type Paint = (style: Style, text: string) => string;

export const plain: Paint = (_style, text) => text;
/**
 * `styleText` without its own stream check (Node 20.19+ strips the codes unless process.stdout is a
 * TTY; older 20.x ignore the option): {@link paintFor} has decided already, per stream.
 */
const style = styleText as (format: Style, text: string, options?: { validateStream?: boolean }) => string;
export const colour: Paint = (format, text) => style(format, text, { validateStream: false });

/**
 * Colour on a terminal only: `hasColors()` of a TTY stream honours `NO_COLOR`,
 * `FORCE_COLOR` and `TERM=dumb`; a pipe or a file never gets escape codes.
 */
export function paintFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): Paint {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return plain;
  return stream.isTTY && stream.hasColors?.() ? colour : plain;
}

const levelStyle: Record<string, Style> = {
  debug: 'gray',
  info: 'blue',
  warning: 'yellow',
  error: 'red',
  critical: ['bold', 'red'],
};

function scalar(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `key=value` for the payload's fields, nested objects as JSON. */
function fields(payload: Record<string, unknown>, skip: readonly string[] = []): string {
  return Object.entries(payload)
    .filter(([key, value]) => value !== undefined && !skip.includes(key))
    .map(([key, value]) => `${key}=${scalar(value)}`)
    .join(' ');
}

/**
 * One readable line per data message: time, sequence, type, then what matters
 * for its type (the log level and message, a test's status and percentage, …).
 */
export function formatMessage(message: DeliveredDataMessage, paint: Paint): string {
  const payload = message.payload as Record<string, unknown>;
  const stamp = typeof payload.timestamp === 'string' ? payload.timestamp : new Date().toISOString();
  const head = `${paint('gray', stamp)} ${paint('dim', `#${message.sequence}`)} ${paint('cyan', message.type)}`;
  let body: string;
  switch (message.type) {
    case 'log_entry': {
      const { level, message: text } = message.payload;
      body = `${paint(levelStyle[level] ?? 'white', level.toUpperCase())} ${text} ${paint('dim', fields(payload, ['level', 'message', 'timestamp']))}`;
      break;
    }
    case 'test_completed': {
      const verdict = message.payload.success ? paint('green', 'passed') : paint('red', 'failed');
      body = `${verdict} ${fields(payload, ['success'])}`;
      break;
    }
    case 'suite_completed':
      body = fields(payload);
      break;
    case 'event':
      body = `${paint('magenta', message.payload.event_type)} ${fields(payload, ['event_type', 'timestamp'])}`;
      break;
    default:
      body = fields(payload);
  }
  return `${head} ${body.trimEnd()}`;
}
