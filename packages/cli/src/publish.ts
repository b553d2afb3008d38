import type { Paint } from './format.js';
import type { Io } from './io.js';
import { publishUrl, UsageError } from './urls.js';

/** Environment variable holding the publish token (`Authorization: Bearer`), as the server's is named. */
export const PUBLISH_TOKEN_ENV = 'ATP_WS_PUBLISH_TOKEN';

/** Largest body sent in one request: below the server's default limit of 1 MiB. */
const MAX_BATCH_BYTES = 512 * 1024;

/** Options of `atp-ws publish`. */
export interface PublishOptions {
  url: string;
  /** Messages given as arguments (each a JSON message or a JSON array of them); stdin when empty. */
  messages: string[];
}

/** Messages from a text: a JSON array, one JSON value, or NDJSON (one message per line). */
export function parseMessages(text: string, where: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  try {
    const value: unknown = JSON.parse(trimmed);
    return Array.isArray(value) ? value : [value];
  } catch {
    // Not one JSON value: NDJSON.
  }
  const out: unknown[] = [];
  for (const [i, line] of trimmed.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch (error) {
      throw new UsageError(`${where}, line ${i + 1}: not JSON (${(error as Error).message})`);
    }
  }
  return out;
}

/** Messages in bodies of at most {@link MAX_BATCH_BYTES} (a bigger message goes alone). */
function batches(messages: readonly unknown[]): unknown[][] {
  const out: unknown[][] = [];
  let current: unknown[] = [];
  let bytes = 2;
  for (const message of messages) {
    const size = Buffer.byteLength(JSON.stringify(message)) + 1;
    if (current.length > 0 && bytes + size > MAX_BATCH_BYTES) {
      out.push(current);
      current = [];
      bytes = 2;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

interface ErrorBody {
  error?: string;
  message?: string;
  issues?: { index: number | null; path: string; message: string }[];
}

/**
 * Sends the messages with `POST /api/ws/publish`, in batches the server
 * accepts or refuses as a whole. Stops at the first refused batch: exit code
 * 1 with the server's answer on stderr (earlier batches stay published).
 */
export async function publish(options: PublishOptions, io: Io, paint: Paint): Promise<number> {
  const url = publishUrl(options.url);
  const token = io.env[PUBLISH_TOKEN_ENV];
  if (!token) throw new UsageError(`set ${PUBLISH_TOKEN_ENV} to the server's publish token`);
  const messages =
    options.messages.length > 0
      ? options.messages.flatMap((text, i) => parseMessages(text, `argument ${i + 1}`))
      : parseMessages(await readAll(io.stdin), 'stdin');
  if (messages.length === 0)
    throw new UsageError('no messages to publish (give them as arguments or on stdin)');
  const fail = (text: string) => {
    io.stderr.write(`${paint('red', `atp-ws: ${text}`)}\n`);
    return 1;
  };

  let accepted = 0;
  for (const batch of batches(messages)) {
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(batch),
      });
    } catch (error) {
      const cause = (error as { cause?: { message?: string } }).cause?.message;
      return fail(`could not reach ${url}: ${cause ?? (error as Error).message}`);
    }
    const text = await response.text();
    if (response.status !== 202) {
      let body: ErrorBody = {};
      try {
        body = JSON.parse(text) as ErrorBody;
      } catch {
        body = { message: text.slice(0, 500) };
      }
      const lines = [
        `${url} answered ${response.status} ${body.error ?? response.statusText}: ${body.message ?? ''}`,
      ];
      for (const issue of body.issues ?? []) {
        const index = issue.index === null ? '' : `message ${accepted + issue.index + 1}: `;
        lines.push(`  ${index}${issue.path}: ${issue.message}`);
      }
      if (response.status === 401) lines.push(`  check ${PUBLISH_TOKEN_ENV}`);
      lines.push(
        accepted > 0
          ? `  ${accepted} earlier messages were published; this batch and the rest were not`
          : '  nothing was published',
      );
      return fail(lines.join('\n'));
    }
    accepted += batch.length;
  }
  io.stderr.write(`atp-ws: published ${accepted} message${accepted === 1 ? '' : 's'}\n`);
  return 0;
}
