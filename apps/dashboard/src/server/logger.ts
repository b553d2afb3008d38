import type { Logger } from '@atp/ws-server';
import type { LogLevelName } from './config.js';

const RANK: Record<LogLevelName, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** A logger that writes nothing: the default in tests. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * A small pino-compatible logger on stderr (`[time] LEVEL message {fields}`),
 * so the example needs no logging dependency.
 */
export function createConsoleLogger(
  level: LogLevelName,
  write = (line: string) => process.stderr.write(line),
): Logger {
  const at = (name: Exclude<LogLevelName, 'silent'>) => (obj: object, msg?: string) => {
    if (RANK[name] < RANK[level]) return;
    const fields = Object.entries(obj)
      .map(([key, value]) => `${key}=${format(value)}`)
      .join(' ');
    write(
      `[${new Date().toISOString()}] ${name.toUpperCase().padEnd(5)} ${msg ?? ''}${fields ? ` ${fields}` : ''}\n`,
    );
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function format(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
