import { ATPWebSocket, type Filter, type ReplayFrom } from '@atp/ws-client';
import { FILTER_KEYS } from '@atp/ws-protocol';
import { WebSocket } from 'ws';
import { formatMessage, type Paint } from './format.js';
import type { Io } from './io.js';
import { printableUrl, UsageError, webSocketUrl } from './urls.js';

/** Options of `atp-ws tail`. */
export interface TailOptions {
  url: string;
  topics: string[];
  filters: string[];
  from?: string;
  json: boolean;
  token?: string;
  clientId?: string;
}

/**
 * `key=value` pairs as a filter: values of integer keys become numbers, and
 * `key=a,b` (or the key given twice) means any of them.
 */
export function parseFilter(pairs: readonly string[]): Filter {
  const filter: Record<string, unknown[]> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--filter takes key=value, got ${JSON.stringify(pair)}`);
    const key = pair.slice(0, at);
    const kind = (FILTER_KEYS as Record<string, string>)[key];
    if (!kind) {
      throw new UsageError(`unknown filter key ${key}; one of ${Object.keys(FILTER_KEYS).join(', ')}`);
    }
    for (const text of pair.slice(at + 1).split(',')) {
      if (kind === 'integer' && !/^\d+$/.test(text)) {
        throw new UsageError(`--filter ${key} takes an integer, got ${JSON.stringify(text)}`);
      }
      const values = filter[key] ?? [];
      values.push(kind === 'integer' ? Number(text) : text);
      filter[key] = values;
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, values] of Object.entries(filter)) out[key] = values.length === 1 ? values[0] : values;
  return out as Filter;
}

/** `start`, or a position `epoch:offset` (the `epoch` and `offset` of a message seen before). */
export function parseFrom(text: string | undefined): ReplayFrom | undefined {
  if (text === undefined) return undefined;
  if (text === 'start') return 'start';
  const match = /^(.+):(\d+)$/.exec(text);
  if (!match?.[1] || !match[2]) throw new UsageError(`--from takes start or <epoch>:<offset>, got ${text}`);
  return { epoch: match[1], offset: Number(match[2]) };
}

/**
 * Prints the messages of the topics until interrupted: one readable line each
 * (NDJSON with `--json`) on stdout, and on stderr when it connects, resumes
 * after a reconnect or sees a gap. Resolves with the exit code.
 */
export function tail(options: TailOptions, io: Io, paint: Paint): Promise<number> {
  if (options.topics.length === 0) throw new UsageError('tail needs at least one --topic');
  const filter = parseFilter(options.filters);
  const from = parseFrom(options.from);
  const url = webSocketUrl(options.url);
  if (options.clientId !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(options.clientId)) {
    throw new UsageError(
      `--client-id must match ^[A-Za-z0-9_-]{1,64}$, got ${JSON.stringify(options.clientId)}`,
    );
  }
  const note = (text: string) => io.stderr.write(`${paint('yellow', `atp-ws: ${text}`)}\n`);

  return new Promise<number>((resolve) => {
    let finished = false;
    const client = new ATPWebSocket({
      url,
      WebSocket: WebSocket as unknown as NonNullable<
        ConstructorParameters<typeof ATPWebSocket>[0]
      >['WebSocket'],
      ...(options.token ? { token: options.token } : {}),
      ...(options.clientId ? { clientId: options.clientId } : {}),
      logger: null,
    });
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      io.offSignal(stop);
      client.disconnect();
      resolve(code);
    };
    const stop = () => {
      note('interrupted, closing');
      finish(0);
    };
    io.onSignal(stop);
    // The reader of stdout went away (`atp-ws tail … | head -1`): nobody is left to print to.
    io.stdout.on('error', () => finish(0));

    let connections = 0;
    client.on('connect', ({ clientId, resumed }) => {
      connections += 1;
      if (connections === 1) note(`connected to ${printableUrl(url)} as ${clientId}`);
      else if (resumed) note(`reconnected: resumed session ${clientId}`);
      else note(`reconnected as ${clientId} (new session)`);
    });
    client.on('disconnect', ({ code, reason, willReconnect }) => {
      if (finished) return;
      note(`disconnected (${code}${reason ? ` ${reason}` : ''})${willReconnect ? ', reconnecting' : ''}`);
    });
    // The client gave up on its own after it had connected (session taken over, credentials refused on a
    // reconnect): tailing stopped. A first connect that fails is reported by `connect()` below.
    client.on('state', ({ to }) => {
      if (to === 'closed' && connections > 0) finish(1);
    });
    client.on('sequence_gap', ({ expected, received, reason }) => {
      const lost = received - 1 > expected ? `#${expected}..#${received - 1}` : `#${expected}`;
      note(`gap: message ${lost} will not arrive (${reason})`);
    });
    client.on('error', ({ error }) => {
      if (!finished) note(`error: ${error.message}`);
    });
    client.on('reconnect_failed', ({ attempts }) => {
      note(`gave up after ${attempts} reconnect attempts`);
      finish(1);
    });
    client.on('message', (message) => {
      io.stdout.write(`${options.json ? JSON.stringify(message) : formatMessage(message, paint)}\n`);
    });

    for (const topic of options.topics) {
      const subscription = client.subscribe(topic, filter, from === undefined ? {} : { from });
      subscription.ready.catch((error: Error) => {
        note(`subscription to ${topic} refused: ${error.message}`);
        finish(1);
      });
    }
    client.connect().catch((error: Error) => {
      if (finished) return;
      note(`could not connect to ${printableUrl(url)}: ${error.message}`);
      finish(1);
    });
  });
}
