import { createDashboardServer, type DashboardServer } from './app.js';
import { ConfigError, describeConfig, loadConfig } from './config.js';
import { createConsoleLogger } from './logger.js';

/** Entry point of `pnpm start`: serves the dashboard until SIGINT or SIGTERM. */
async function main(): Promise<void> {
  let dashboard: DashboardServer;
  try {
    const config = loadConfig(process.env);
    const logger = createConsoleLogger(config.logLevel);
    dashboard = await createDashboardServer({ env: process.env, logger });
  } catch (error) {
    const reason =
      error instanceof ConfigError
        ? error.message
        : (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
          ? `port ${process.env.PORT ?? 8000} is already in use; set PORT to another one`
          : String((error as Error).stack ?? error);
    process.stderr.write(`\natp-dashboard: cannot start: ${reason}\n\n`);
    process.exit(1);
  }

  // Handlers first: a supervisor that signals as soon as it reads the banner must not kill us mid-start.
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`${signal} again: exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`\n${signal}: closing WebSocket clients (1001) and stopping…\n`);
    const timeout = setTimeout(() => {
      process.stderr.write('shutdown took longer than 10 s: exiting\n');
      process.exit(1);
    }, 10_000);
    timeout.unref();
    dashboard.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  const { url, config } = dashboard;
  process.stdout.write(
    [
      '',
      `ATP dashboard listening on ${config.host}:${dashboard.port}`,
      `  open            ${url}/`,
      `  plain page      ${url}/plain.html (only /static/v2/js/websocket.js)`,
      `  WebSocket       ${url.replace(/^http/, 'ws')}/api/ws/updates`,
      `  connection info ${url}/api/ws/info`,
      '',
      'Environment in effect:',
      ...describeConfig(config).map((line) => `  ${line}`),
      '',
      'Press Ctrl+C to stop.',
      '',
    ].join('\n'),
  );
}

void main();
