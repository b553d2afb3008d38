import { parseArgs } from 'node:util';
import { paintFor } from './format.js';
import { type Io, processIo } from './io.js';
import { PUBLISH_TOKEN_ENV, publish } from './publish.js';
import { tail } from './tail.js';
import { UsageError } from './urls.js';

/** Environment variable holding the token of `tail` when authentication is on. */
export const TOKEN_ENV = 'ATP_WS_TOKEN';

export const USAGE = `Usage:
  atp-ws tail <url> --topic <topic> [--topic …] [--filter key=value …] [--from start|<epoch>:<offset>]
                    [--json] [--client-id <id>]
      Prints live messages until Ctrl-C; reconnects on its own and says on stderr
      when it resumed or saw a gap. Token (when the server asks for one): ${TOKEN_ENV}.
  atp-ws publish <url> [<message-json> …]
      Publishes data messages given as arguments, or on stdin (NDJSON or a JSON
      array), with POST /api/ws/publish. Token: ${PUBLISH_TOKEN_ENV}.

<url> is the server (http://localhost:8000) or its WebSocket endpoint
(ws://localhost:8000/api/ws/updates).
Exit codes: 0 done, 1 refused by the server or unreachable, 2 wrong usage.
`;

/** Runs `atp-ws` with its arguments (without `node` and the script); resolves with the exit code. */
export async function main(args: readonly string[], io: Io = processIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      io.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    }
    if (command === 'tail') {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          topic: { type: 'string', short: 't', multiple: true, default: [] },
          filter: { type: 'string', short: 'f', multiple: true, default: [] },
          from: { type: 'string' },
          json: { type: 'boolean', default: false },
          'client-id': { type: 'string' },
        },
      });
      const [url, ...extra] = positionals;
      if (!url || extra.length > 0) throw new UsageError('tail takes exactly one <url>');
      const stdout = io.stdout as NodeJS.WriteStream;
      return await tail(
        {
          url,
          topics: values.topic,
          filters: values.filter,
          json: values.json,
          ...(values.from === undefined ? {} : { from: values.from }),
          ...(values['client-id'] === undefined ? {} : { clientId: values['client-id'] }),
          ...(io.env[TOKEN_ENV] ? { token: io.env[TOKEN_ENV] } : {}),
        },
        io,
        paintFor(stdout, io.env),
      );
    }
    if (command === 'publish') {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const [url, ...messages] = positionals;
      if (!url) throw new UsageError('publish takes a <url>');
      return await publish({ url, messages }, io, paintFor(io.stderr as NodeJS.WriteStream, io.env));
    }
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  } catch (error) {
    // parseArgs throws TypeErrors with a code for unknown or malformed options.
    const usage =
      error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    if (!usage) throw error;
    io.stderr.write(`atp-ws: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
}
