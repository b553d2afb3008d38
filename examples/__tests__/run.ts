import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The examples folder: every example is run from here, as `node <folder>/<file>`. */
export const examplesDir = fileURLToPath(new URL('..', import.meta.url));

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node <file>` to its end (at most `timeoutMs`, then it is killed and the test fails). */
export function runToEnd(file: string, env: Record<string, string>, timeoutMs = 15_000): Promise<Finished> {
  const child = spawn(process.execPath, [file], { cwd: examplesDir, env: { ...process.env, ...env } });
  return finished(child, timeoutMs, file);
}

function finished(child: ChildProcess, timeoutMs: number, what: string): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not exit within ${timeoutMs} ms; stdout: ${stdout} stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A running example server: its URL (from its `Listening on …` line) and how to stop it. */
export interface RunningServer {
  readonly url: string;
  /** Sends SIGTERM and resolves with how the process ended. */
  stop(): Promise<Finished>;
}

/** Starts `node <file>` with PORT=0 and waits for the URL it prints. */
export function startServer(file: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const child = spawn(process.execPath, [file], {
    cwd: examplesDir,
    env: { ...process.env, PORT: '0', ...env },
  });
  const ended = finished(child, 600_000, file);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} printed no URL within 10 s: ${out}`));
    }, 10_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const url = /Listening on (http:\/\/\S+)/.exec(out)?.[1];
      if (!url) return;
      clearTimeout(timer);
      resolve({
        url,
        stop: async () => {
          const exit = Promise.race([
            ended,
            new Promise<never>((_, fail) =>
              setTimeout(() => {
                child.kill('SIGKILL');
                fail(new Error(`${file} did not exit within 5 s of SIGTERM`));
              }, 5000),
            ),
          ]);
          child.kill('SIGTERM');
          return exit;
        },
      });
    });
    ended.then((result) => reject(new Error(`${file} exited early: ${JSON.stringify(result)}`)), reject);
  });
}
