/** Where the commands read, write and hear signals: the process, or a test's stand-in. */
export interface Io {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Calls `handler` on SIGINT and SIGTERM. */
  onSignal(handler: () => void): void;
  offSignal(handler: () => void): void;
}

/** The running process as {@link Io}. */
export const processIo: Io = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  onSignal(handler) {
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  },
  offSignal(handler) {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  },
};
