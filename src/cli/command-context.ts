import type { Readable } from "node:stream";

/** Text output a command writes to: a process stream, or a test's collector. */
export interface TextOutput {
  write(text: string): unknown;
}

/** Where the command line writes and what environment it reads. */
export interface CliIo {
  readonly stdout: TextOutput;
  readonly stderr: TextOutput;
  readonly env: NodeJS.ProcessEnv;
  /**
   * Standard input, for `tollgate pipe` (which also needs `stdout` to be a byte stream). Absent: the
   * process's own.
   */
  readonly stdin?: Readable;
}

/** The process's own streams and environment: what `bin/tollgate.js` runs with. */
export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };

/**
 * What every command's registration receives: the output and environment to use (so the commands that
 * only read files and print, such as `check` and `schema`, run in-process in tests) and the setter of the
 * exit code `main` resolves with.
 */
export interface CommandContext extends CliIo {
  setExitCode(code: number): void;
}
